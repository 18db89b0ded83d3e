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


def _by_hand() -> list[float]:
    """dE/dx = W1 delta1, from the worked example's weights and first layer's deltas."""
    W1, delta1 = SEED["parameters"]["weights"][0], SEED["deltas_dE_dnet"][0]
    return [sum(w * d for w, d in zip(row, delta1, strict=True)) for row in W1]


def test_input_gradients_in_every_form(client: Client, unique: Unique) -> None:
    name = unique("seed")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    layered = client.input_gradient(name, SEED_INPUTS, SEED_TARGETS, jacobian=True)
    assert (layered.model, layered.version, layered.loss) == (name, 1, SEED["loss"])
    assert_close(layered.input_gradients, [_by_hand()])
    assert layered.jacobian is not None and np.array(layered.jacobian).shape == (1, 1, 2)
    named = client.input_gradient(name, SEED_INPUTS, SEED_TARGETS, notation="named")
    row = layered.input_gradients[0]
    assert isinstance(row, list)
    assert named.input_gradients == [{"n1": row[0], "n2": row[1]}] and named.jacobian is None
    loss, gradients, jacobian = client.input_gradient_arrays(
        name, np.array(SEED_INPUTS), np.array(SEED_TARGETS), jacobian=True
    )
    assert float(loss) == layered.loss
    assert gradients.tolist() == layered.input_gradients
    assert jacobian.tolist() == layered.jacobian
    stateless = client.input_gradient_stateless(
        SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS, jacobian=True
    )
    assert stateless.model is None
    assert stateless.model_dump(exclude={"model", "version"}) == layered.model_dump(
        exclude={"model", "version"}
    )


def test_the_gradient_check_of_the_seed(client: Client, unique: Unique) -> None:
    name = unique("seed")
    client.create_model(name, SEED_NETWORK, parameters=SEED_PARAMETERS)
    check = client.gradient_check(name, SEED_INPUTS, SEED_TARGETS)
    assert check.epsilon == 1e-6 and check.max_relative_error < 1e-7
    assert {p.name: p.backprop for p in check.parameters} == SEED["gradients_named"]
    sampled = client.gradient_check(name, SEED_INPUTS, SEED_TARGETS, epsilon=1e-5, sample=5)
    assert sampled.epsilon == 1e-5 and len({p.name for p in sampled.parameters}) == 5


@pytest.mark.anyio
async def test_async_input_gradients_and_gradient_check(aclient: AsyncClient) -> None:
    await aclient.create_model("seed", SEED_NETWORK, parameters=SEED_PARAMETERS)
    answer = await aclient.input_gradient("seed", SEED_INPUTS, SEED_TARGETS)
    assert_close(answer.input_gradients, [_by_hand()])
    stateless = await aclient.input_gradient_stateless(
        SEED_NETWORK, SEED_PARAMETERS, SEED_INPUTS, SEED_TARGETS
    )
    assert stateless.input_gradients == answer.input_gradients
    _, gradients = await aclient.input_gradient_arrays(
        "seed", np.array(SEED_INPUTS), np.array(SEED_TARGETS)
    )
    assert gradients.tolist() == answer.input_gradients
    check = await aclient.gradient_check("seed", SEED_INPUTS, SEED_TARGETS, sample=3)
    assert len(check.parameters) == 3 and check.max_relative_error < 1e-7
