"""A method's declarations are checked when it registers: a misspelt extra input, extra inputs without an
objective to serve them, or a staged method without the loop that trains its stages is an error then,
not a silently ignored setting later."""

import pytest

from suite.method.registry import (
    METHODS,
    EXTRA_INPUTS,
    Method,
    Paper,
    all_methods,
    register,
)


def _objective(batch, hp):
    return batch.policy_logps.mean(), {}


def _method(method_id, **fields):
    return Method(id=method_id, name=method_id, paper=Paper("test fixture"), feedback="pairwise", taxonomy={},
                  needs_reference=False, defaults={"learning_rate": 1e-3, **fields.pop("defaults", {})},
                  objective=fields.pop("objective", _objective), **fields)


@pytest.fixture
def registered():
    ids = []
    yield ids
    for method_id in ids:
        METHODS.remove(method_id)


def test_a_misspelt_extra_input_is_refused_at_registration(registered):
    registered.append("test-misspelt")
    with pytest.raises(ValueError, match=r"unknown extra_inputs \['sequence_kll'\]"):
        register(_method("test-misspelt", extra_inputs=frozenset({"sequence_kll"})))
    assert "test-misspelt" not in METHODS


def test_extra_inputs_need_an_objective_to_serve(registered):
    registered.append("test-loop-only")
    with pytest.raises(ValueError, match="served to an objective"):
        register(_method("test-loop-only", objective=None, train_loop=lambda *a, **k: None,
                         extra_inputs=frozenset({"values"})))


def test_a_staged_method_needs_stages_and_a_loop_that_trains_them(registered):
    registered.append("test-staged")
    with pytest.raises(ValueError, match="staged"):
        register(_method("test-staged", staged=True))
    with pytest.raises(ValueError, match="staged"):
        register(_method("test-staged", staged=True, train_loop=lambda *a, **k: None))
    register(_method("test-staged", staged=True, train_loop=lambda *a, **k: None, defaults={"stages": 2}))
    assert METHODS.get("test-staged").staged


def test_every_registered_method_declares_only_known_extra_inputs():
    for method in all_methods():
        assert set(method.extra_inputs) <= set(EXTRA_INPUTS), method.id
