"""RRHF and PRO: hand-computed loss values, tie handling, gradient directions, the registry entries and a
two-step training smoke test on the tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from methods.listwise import pro_loss, rrhf_loss
from suite.data.records import ListwiseRecord
from suite.method.registry import FeedbackBatch, get_method


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# -- RRHF -------------------------------------------------------------------------------------------


def test_rrhf_hand_computed():
    # ℓ = [-6, -2, -3], |y| = [3, 2, 1]  →  p = ℓ/|y| = [-2, -1, -3]; scores rank 0 ≻ 1 ≻ 2
    # L_rank = max(0, p1 − p0) + max(0, p2 − p0) + max(0, p2 − p1) = max(0, 1) + max(0, -1) + max(0, -2) = 1
    # L_ft   = −p0 = 2;  L = 1 + 1·2 = 3, and with weight 0.5: 1 + 0.5·2 = 2
    logps, lengths, scores = t([-6.0, -2.0, -3.0]), t([3, 2, 1]), t([1.0, 0.5, 0.0])
    losses, rank, nll = rrhf_loss(logps, lengths, scores)
    assert (losses.item(), rank.item(), nll.item()) == pytest.approx((3.0, 1.0, 2.0))
    assert rrhf_loss(logps, lengths, scores, chosen_nll_weight=0.5)[0].item() == pytest.approx(2.0)
    # a correctly ordered list has no rank loss: p = [-1, -2, -3] → L = 0 + 1
    assert rrhf_loss(t([-1.0, -4.0, -9.0]), t([1, 2, 3]), scores)[0].item() == pytest.approx(1.0)


def test_rrhf_ties_contribute_nothing():
    # p = [-2, -1, -3] as above but scores tie 0 and 1: the pair (0, 1) is skipped even though p1 > p0;
    # (0, 2): max(0, -3 + 2) = 0 and (1, 2): max(0, -3 + 1) = 0  →  L_rank = 0
    logps, lengths = t([-6.0, -2.0, -3.0]), t([3, 2, 1])
    _, rank, _ = rrhf_loss(logps, lengths, t([1.0, 1.0, 0.0]))
    assert rank.item() == 0.0
    _, rank, _ = rrhf_loss(logps, lengths, t([0.3, 0.3, 0.3]))  # all tied: no ranking signal at all
    assert rank.item() == 0.0


def test_rrhf_gradients_push_the_best_up_and_the_worst_down():
    # p = ℓ (lengths 1) = [-3, -2, -1], the reverse of the ranking:
    # L_rank = (p1 − p0) + (p2 − p0) + (p2 − p1) = 1 + 2 + 1 = 4; L_ft = −p0
    # ∂L/∂p0 = −1 −1 (rank) −1 (ft) = −3;  ∂L/∂p1 = +1 −1 = 0;  ∂L/∂p2 = +1 +1 = +2
    logps = t([-3.0, -2.0, -1.0]).requires_grad_()
    losses, rank, _ = rrhf_loss(logps, t([1, 1, 1]), t([0.9, 0.5, 0.1]))
    assert rank.item() == pytest.approx(4.0)
    losses.sum().backward()
    assert logps.grad.tolist() == [[-3.0, 0.0, 2.0]]
    # with lengths the gradient w.r.t. ℓ is divided by |y|: ∂L/∂ℓ = ∂L/∂p / |y|
    logps = t([-6.0, -2.0, -1.0]).requires_grad_()  # p = [-3, -2, -1] again with |y| = [2, 1, 1]
    rrhf_loss(logps, t([2, 1, 1]), t([0.9, 0.5, 0.1]))[0].sum().backward()
    assert logps.grad.tolist() == [[-1.5, 0.0, 2.0]]


def test_rrhf_reads_the_ranking_off_the_scores_and_averages_the_batch():
    logps, lengths, scores = t([-6.0, -2.0, -3.0]), t([3, 2, 1]), t([1.0, 0.5, 0.0])
    perm = [2, 0, 1]
    shuffled = rrhf_loss(logps[:, perm], lengths[:, perm], scores[:, perm])[0]
    assert shuffled.item() == pytest.approx(3.0)  # column order does not matter
    batch = rrhf_loss(torch.cat([logps, t([-1.0, -4.0, -9.0])]), torch.cat([lengths, t([1, 2, 3])]),
                      torch.cat([scores, scores]))[0]
    assert batch.tolist() == pytest.approx([3.0, 1.0])


# -- PRO --------------------------------------------------------------------------------------------

LN2 = math.log(2)


def test_pro_plain_plackett_luce_hand_computed():
    # |y| = 1, p = ℓ = [ln2 − 1, −1, −1]: exp(p) ∝ [2, 1, 1]
    # step 1: −log(2 / (2 + 1 + 1)) = ln 2;  step 2: −log(1 / (1 + 1)) = ln 2  →  L_rank = 2 ln 2
    # L_sft = −ℓ0 = 1 − ln 2 (sequence NLL);  L = 2 ln 2 + 0.5 (1 − ln 2)
    logps, lengths, scores = t([LN2 - 1, -1.0, -1.0]), t([1, 1, 1]), t([3.0, 2.0, 1.0])
    losses, rank, nll = pro_loss(logps, lengths, scores, sft_weight=0.5)
    assert rank.item() == pytest.approx(2 * LN2, abs=1e-6)
    assert nll.item() == pytest.approx(1 - LN2, abs=1e-6)
    assert losses.item() == pytest.approx(2 * LN2 + 0.5 * (1 - LN2), abs=1e-6)
    # T = 2: exp(p/2) ∝ [√2, 1, 1]: step 1 = log((√2 + 2)/√2) = log(1 + √2), step 2 = ln 2
    _, rank, _ = pro_loss(logps, lengths, scores, sft_weight=0.5, temperature=2.0)
    assert rank.item() == pytest.approx(math.log(1 + math.sqrt(2)) + LN2, abs=1e-6)


def test_pro_uses_length_normalised_logps_but_a_sequence_nll():
    # ℓ = [2(ln2 − 1), −3, −1], |y| = [2, 3, 1] → p = [ln2 − 1, −1, −1]: the same ranking loss as above;
    # L_sft = −ℓ0 = 2 − 2 ln 2 (a sum over the best response's tokens, as PRO's released code)
    losses, rank, nll = pro_loss(t([2 * (LN2 - 1), -3.0, -1.0]), t([2, 3, 1]), t([3.0, 2.0, 1.0]), sft_weight=1.0)
    assert rank.item() == pytest.approx(2 * LN2, abs=1e-6) and nll.item() == pytest.approx(2 - 2 * LN2, abs=1e-6)


def test_pro_score_difference_temperatures_hand_computed():
    # p = [-1, -2, -2], scores r = [1, 0.5, 0]
    # step 1: 1/T_1^i = r1 − r_i = [0.5, 1] for i = 2, 3; 1/T_1^1 = max = 1
    #         → logits [-1·1, -2·0.5, -2·1] = [-1, -1, -2]
    #         −log(e^-1 / (e^-1 + e^-1 + e^-2)) = log(2 + e^-1)
    # step 2: 1/T_2^3 = r2 − r3 = 0.5 = 1/T_2^2 → logits [-1, -1] → ln 2
    logps, lengths, scores = t([-1.0, -2.0, -2.0]), t([1, 1, 1]), t([1.0, 0.5, 0.0])
    _, rank, _ = pro_loss(logps, lengths, scores, sft_weight=0.0, score_temperature=True)
    assert rank.item() == pytest.approx(math.log(2 + math.exp(-1)) + LN2, abs=1e-6)
    # the same p without temperatures: step 1 −log(e^-1 / (e^-1 + 2e^-2)) = log(1 + 2e^-1); step 2 logits
    # [-2, -2] → ln 2
    _, plain, _ = pro_loss(logps, lengths, scores, sft_weight=0.0)
    assert plain.item() == pytest.approx(math.log(1 + 2 * math.exp(-1)) + LN2, abs=1e-6)


def test_pro_ties():
    logps, lengths = t([LN2 - 1, -1.0, -1.0]), t([1, 1, 1])
    # plain: responses 2 and 3 tie, so step 2 has no competitor (0); step 1 is unchanged: ln 2
    _, rank, _ = pro_loss(logps, lengths, t([3.0, 1.0, 1.0]), sft_weight=0.0)
    assert rank.item() == pytest.approx(LN2, abs=1e-6)
    # plain, 1 and 2 tied: step 1's denominator drops response 2: −log(2 / (2 + 1)) = log 1.5; step 2: ln 2
    _, rank, _ = pro_loss(logps, lengths, t([3.0, 3.0, 1.0]), sft_weight=0.0)
    assert rank.item() == pytest.approx(math.log(1.5) + LN2, abs=1e-6)
    # all tied: nothing to rank
    _, rank, _ = pro_loss(logps, lengths, t([1.0, 1.0, 1.0]), sft_weight=0.0)
    assert rank.item() == 0.0
    # score temperatures, all tied: every logit is p·0 = 0 → a constant log 3 + log 2 with no gradient
    tied = logps.clone().requires_grad_()
    _, rank, _ = pro_loss(tied, lengths, t([1.0, 1.0, 1.0]), sft_weight=0.0, score_temperature=True)
    rank.sum().backward()
    assert rank.item() == pytest.approx(math.log(6), abs=1e-6) and tied.grad.abs().max().item() == 0.0


@pytest.mark.parametrize("score_temperature", [False, True])
def test_pro_gradients_push_the_best_up_and_the_worst_down(score_temperature):
    logps = t([-2.0, -1.5, -1.0, -1.2]).requires_grad_()
    losses, _, _ = pro_loss(logps, t([1, 1, 1, 1]), t([0.9, 0.6, 0.4, 0.1]), sft_weight=0.0,
                            score_temperature=score_temperature)
    losses.sum().backward()
    assert logps.grad[0, 0] < 0 and logps.grad[0, -1] > 0
    logps.grad = None
    pro_loss(logps, t([1, 1, 1, 1]), t([0.9, 0.6, 0.4, 0.1]), sft_weight=1.0)[0].sum().backward()
    assert logps.grad[0, 0] < 0  # the SFT term pulls the best up too


# -- registry entries and objectives ----------------------------------------------------------------


def flat(per_example):
    """[B, K] → [K·B] laid out as K blocks of B, as the collator does."""
    return per_example.transpose(0, 1).reshape(-1)


def test_registry_entries():
    for method_id in ("rrhf", "pro"):
        method = get_method(method_id)
        assert method.feedback == "listwise" and not method.needs_reference
        assert method.taxonomy["feedback-arity"] == "listwise" and method.taxonomy["reference"] == "reference-free"
        assert method.taxonomy["sft"] == "merged" and method.taxonomy["divergence"] == "none"
        assert "learning_rate" in method.defaults
    assert get_method("rrhf").defaults == {"chosen_nll_weight": 1.0, "learning_rate": 2e-5}
    assert get_method("pro").defaults == {"sft_weight": 0.05, "temperature": 1.0, "score_temperature": True,
                                          "learning_rate": 5e-6}


def test_objectives_read_the_k_blocks_and_average_the_batch():
    logps = t([-6.0, -2.0, -3.0], [-1.0, -4.0, -9.0])
    lengths, scores = t([3, 2, 1], [1, 2, 3]), t([1.0, 0.5, 0.0], [1.0, 0.5, 0.0])
    batch = FeedbackBatch(policy_logps=flat(logps), lengths=flat(lengths), scores=scores)
    rrhf = get_method("rrhf")
    loss, metrics = rrhf.objective(batch, rrhf.hyperparameters())
    assert loss.item() == pytest.approx((3.0 + 1.0) / 2)  # the two hand-computed examples above
    assert metrics["loss/rank"].item() == pytest.approx(0.5)
    assert metrics["rewards/accuracy"].item() == pytest.approx(5 / 6)  # 2 of 3 pairs, then 3 of 3
    pro = get_method("pro")
    loss, _ = pro.objective(batch, pro.hyperparameters())
    expected = pro_loss(logps, lengths, scores, sft_weight=0.05 * (3 - 1) ** 2, score_temperature=True)[0].mean()
    assert loss.item() == pytest.approx(expected.item())  # β = 0.05·(K − 1)²


# -- a two-step training run ------------------------------------------------------------------------


def test_rrhf_trains_two_steps_on_the_tiny_model(tmp_path):
    from suite.modeling.models import load_model
    from suite.training.trainer import TrainSettings, build_examples, train

    tiny = load_model("tiny-llama")
    records = [ListwiseRecord(f"Name a colour (#{i}).", ("Blue, a calm colour.", "Red.", "no"), (0.9, 0.5, 0.1))
               for i in range(4)]
    method = get_method("rrhf")
    settings = TrainSettings(max_steps=2, per_device_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-3,
                             lr_scheduler="constant", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)
    summary = train(tiny.model, tiny.tokenizer, method, method.hyperparameters(),
                    build_examples(records, tiny.tokenizer, 64), settings, tmp_path)
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert any("loss/rank" in row and "rewards/accuracy" in row for row in logged)
