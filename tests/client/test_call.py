"""How a request is built: names quoted in paths, left-out options dropped, NumPy and models
turned into JSON, samples into query numbers; and how an answer is read."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest

from service.client import LayeredParameters, NetworkSpec, NotFound, UnexpectedAnswer
from service.client.call import (
    Call,
    array,
    body,
    npy,
    numbers,
    params,
    path,
    plain,
    precondition,
    rows,
    schema,
)
from service.client.models import get_model


def test_names_are_percent_encoded_in_paths_slashes_included() -> None:
    assert path("/v1/models/{}/forward", "a b/c?d") == "/v1/models/a%20b%2Fc%3Fd/forward"
    assert get_model("x/../y").path == "/v1/models/x%2F..%2Fy"


def test_left_out_options_are_not_sent() -> None:
    assert params(limit=None, cursor="b", trace=False) == {"cursor": "b", "trace": False}
    assert body(inputs=[[1.0]], learning_rate=None) == {"inputs": [[1.0]]}


def test_numpy_values_become_plain_json() -> None:
    value = {
        "weights": np.array([[1.5, 2.0]], dtype=np.float32),
        "bias": np.float32(0.25),
        "count": np.int64(3),
        "rows": (np.array([0.1]), [np.float64(0.2)]),
    }
    converted = plain(value)
    assert converted == {"weights": [[1.5, 2.0]], "bias": 0.25, "count": 3, "rows": [[0.1], [0.2]]}
    assert json.loads(json.dumps(converted)) == converted
    assert type(converted["count"]) is int


def test_answers_are_sent_back_as_their_json_with_the_fields_the_client_does_not_know() -> None:
    network = NetworkSpec.model_validate(
        {
            "inputs": 2,
            "layers": [{"units": 1, "activation": "relu", "dropout": 0.5}],
            "loss": "mean_squared_error",
        }
    )
    assert plain(network) == {
        "inputs": 2,
        "layers": [{"units": 1, "activation": "relu", "dropout": 0.5}],
        "loss": "mean_squared_error",
        "dtype": "float64",
    }
    layered = LayeredParameters.model_validate({"layers": [{"weights": [[1.0]], "biases": [0.0]}]})
    assert plain({"parameters": layered}) == {
        "parameters": {"layers": [{"weights": [[1.0]], "biases": [0.0]}]}
    }


def test_samples_for_query_parameters_keep_every_digit() -> None:
    assert numbers([0.1, 1 / 3, 2]) == "0.1,0.3333333333333333,2.0"
    assert numbers(np.array([0.23, 0.55])) == "0.23,0.55"
    assert rows([[0.23, 0.55], [0.1, 0.9]]) == "0.23,0.55;0.1,0.9"
    assert rows(np.array([0.23, 0.55])) == "0.23,0.55"  # one row


def test_if_match_is_the_version_as_an_etag() -> None:
    assert precondition(None) == {}
    assert precondition(4) == {"If-Match": '"4"'}


def test_a_call_parses_success_and_raises_otherwise() -> None:
    call = Call("GET", "/x", schema(LayeredParameters))
    ok = httpx.Response(200, json={"layers": [{"weights": [[1]], "biases": [2]}]})
    assert call.result(ok).layers[0].biases == [2.0]
    missing = httpx.Response(404, json={"title": "Model not found", "detail": "no x"})
    with pytest.raises(NotFound, match="no x"):
        call.result(missing)


def test_npy_bodies_round_trip_without_pickle() -> None:
    X = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    buffer = io.BytesIO(npy(X))
    assert np.array_equal(np.load(buffer, allow_pickle=False), X)
    assert np.array_equal(array(httpx.Response(200, content=npy(X))), X)
    objects = io.BytesIO()
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        array(httpx.Response(200, content=objects.getvalue()))
    with pytest.raises(UnexpectedAnswer, match="pickle"):  # through a call: the client's error
        Call("POST", "/x", array).result(httpx.Response(200, content=objects.getvalue()))
