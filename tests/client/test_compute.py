"""Forward, gradient and train-step through the client, checked against the seed's worked
example to 1e-12; ``.npy`` forward against the JSON one; the stateless variants against the
stored ones."""

from __future__ import annotations

import numpy as np
import pytest

from service.client import AsyncClient, Client, LayeredParameters, PreconditionFailed
from tests.api.support import (
    AFTER_STEP,
    AFTER_STEP_NAMED,
    SEED,
    SEED_GRADIENTS,
    SEED_INPUTS,
    SEED_LR,
    SEED_NETWORK,
    SEED_PARAMETERS,
    SEED_PARAMETERS_NAMED,
    SEED_TARGETS,
    assert_close,
)
from tests.client.conftest import Unique

NODES = {f"n{k}" for k in range(3, 10)}


def test_the_worked_example_step_by_step(client: Client, unique: Unique) -> None:
    name = unique("seed")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)

    forward = client.forward(name, SEED_INPUTS, trace=True, notation="named")
    assert (forward.model, forward.version) == (name, 1)
    assert_close(forward.outputs, [SEED["forward"]["out"][-1]])
    assert forward.trace is not None and forward.trace.nodes is not None
    assert set(forward.trace.nodes) == NODES
    assert_close([layer.out[0] for layer in forward.trace.layers], SEED["forward"]["out"])
    assert_close([layer.net[0] for layer in forward.trace.layers], SEED["forward"]["net"])

    gradient = client.gradient(name, SEED_INPUTS, SEED_TARGETS, deltas=True, notation="named")
    assert_close(gradient.loss, SEED["loss"])
    assert_close(gradient.gradients, SEED["gradients_named"])
    assert gradient.deltas is not None
    assert_close([d[0] for d in gradient.deltas.layers], SEED["deltas_dE_dnet"])

    step = client.train_step(name, SEED_INPUTS, SEED_TARGETS, learning_rate=SEED_LR, if_match=1)
    assert (step.model, step.version) == (name, 2)
    assert_close(step.loss, SEED["loss"])  # the loss before the step

    after = client.get_parameters(name, notation="named")
    assert after.version == 2
    assert_close(after.parameters, AFTER_STEP_NAMED)
    layered = client.get_parameters(name).parameters
    assert isinstance(layered, LayeredParameters)
    assert_close(layered.model_dump(), AFTER_STEP)
    assert_close(
        client.gradient(name, SEED_INPUTS, SEED_TARGETS).loss, SEED["after_one_sgd_step"]["loss"]
    )


def test_layered_gradients_by_default(client: Client, unique: Unique) -> None:
    name = unique("layered")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    gradient = client.gradient(name, np.array(SEED_INPUTS), np.array(SEED_TARGETS))
    assert isinstance(gradient.gradients, LayeredParameters) and gradient.model == name
    assert_close(gradient.gradients.model_dump(), SEED_GRADIENTS)
    assert gradient.deltas is None and gradient.trace is None


def test_a_stale_train_step_commits_nothing(client: Client, unique: Unique) -> None:
    name = unique("stale-step")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    with pytest.raises(PreconditionFailed):
        client.train_step(name, SEED_INPUTS, SEED_TARGETS, if_match=2)
    assert client.get_parameters(name, notation="named").parameters == SEED_PARAMETERS_NAMED


def test_forward_array_equals_the_json_forward(client: Client, unique: Unique) -> None:
    name = unique("npy")
    network = {
        "inputs": 5,
        "layers": [{"units": 16, "activation": "tanh"}, {"units": 3, "activation": "identity"}],
        "loss": "mean_squared_error",
    }
    client.create_model(name, network, init={"seed": 3})
    X = np.random.default_rng(0).normal(size=(200, 5))
    outputs = client.forward_array(name, X)
    assert outputs.dtype == np.float64 and outputs.shape == (200, 3)
    assert np.array_equal(outputs, np.array(client.forward(name, X).outputs))  # JSON is exact


def test_stateless_calls_equal_the_worked_example(client: Client) -> None:
    forward = client.forward_stateless(SEED_NETWORK, SEED_PARAMETERS_NAMED, SEED_INPUTS)
    assert (forward.model, forward.version) == (None, None)
    assert_close(forward.outputs, [SEED["forward"]["out"][-1]])
    gradient = client.gradient_stateless(
        SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS, notation="named"
    )
    assert_close(gradient.gradients, SEED["gradients_named"])
    step = client.train_step_stateless(
        SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS, learning_rate=SEED_LR
    )
    assert_close(step.loss, SEED["loss"])
    assert isinstance(step.parameters, LayeredParameters)
    assert_close(step.parameters.model_dump(), AFTER_STEP)
    assert step.optimizer_state.step == 1


def test_stateless_momentum_carries_its_state(client: Client) -> None:
    optimizer = {"kind": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    first = client.train_step_stateless(
        SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS, optimizer=optimizer
    )
    assert set(first.optimizer_state.slots) == {"velocity"}
    second = client.train_step_stateless(
        SEED_NETWORK,
        first.parameters,
        SEED_INPUTS,
        SEED_TARGETS,
        optimizer=optimizer,
        optimizer_state=first.optimizer_state,
    )
    assert second.optimizer_state.step == 2 and second.loss < first.loss


@pytest.mark.anyio
async def test_async_worked_example(aclient: AsyncClient) -> None:
    await aclient.create_model("seed", SEED_NETWORK, parameters=SEED_PARAMETERS_NAMED)
    forward = await aclient.forward("seed", SEED_INPUTS)
    assert_close(forward.outputs, [SEED["forward"]["out"][-1]])
    X = np.array(SEED_INPUTS * 3)
    assert np.array_equal(await aclient.forward_array("seed", X), np.array(forward.outputs * 3))
    gradient = await aclient.gradient("seed", SEED_INPUTS, SEED_TARGETS, notation="named")
    assert_close(gradient.gradients, SEED["gradients_named"])
    step = await aclient.train_step("seed", SEED_INPUTS, SEED_TARGETS, learning_rate=SEED_LR)
    assert step.version == 2
    after = await aclient.get_parameters("seed", notation="named")
    assert_close(after.parameters, AFTER_STEP_NAMED)
    stateless = await aclient.train_step_stateless(
        SEED_NETWORK,
        SEED_PARAMETERS,
        SEED_INPUTS,
        SEED_TARGETS,
        learning_rate=SEED_LR,
        notation="named",
    )
    assert_close(stateless.parameters, AFTER_STEP_NAMED)
    assert_close(
        (
            await aclient.gradient_stateless(
                SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS
            )
        ).loss,
        SEED["loss"],
    )
    assert (
        await aclient.forward_stateless(SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS)
    ).outputs == (forward.outputs)
