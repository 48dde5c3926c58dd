"""The online family's math on hand-computed values: PPO's per-token reward, GAE, clipped policy and value
losses; RLOO's and GRPO's advantages; GRPO's loss; online DPO's ranking; online UNA; the GSM8K check; and
the right-aligned log-probs the loop computes only for response positions."""

import math

import pytest
import torch

from methods.online import (
    _online_dpo_loss,
    gae,
    grpo_advantages,
    grpo_loss,
    masked_whiten,
    ppo_policy_loss,
    ppo_token_rewards,
    ppo_value_loss,
    ptx_loss,
    rank_pairs,
    rloo_advantages,
    rloo_loss,
    una_online_loss,
)
from suite.core.errors import DataError
from suite.data.records import SFTRecord
from suite.training.online import (
    RolloutBatch,
    gsm8k_answer,
    gsm8k_reward,
    response_logps,
    right_aligned,
)

T = lambda *rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731
B = lambda *rows: torch.tensor(rows, dtype=torch.bool)  # noqa: E731


def test_ppo_token_rewards_put_the_score_on_the_last_response_token():
    # KL per token: −1 − (−1.5) = 0.5 and −2 − (−1) = −1; β = 0.1 → −0.05, +0.1; the score 2 lands on the last token
    rewards = ppo_token_rewards(T(2.0, 1.0), T([-1, -2, 0], [-1, -1, -1]), T([-1.5, -1, 0], [-1, -1, -1]),
                                B([True, True, False], [True, False, False]), beta=0.1)
    assert rewards.flatten().tolist() == pytest.approx([-0.05, 2.1, 0.0, 1.0, 0.0, 0.0])


def test_gae_hand_values():
    # γ = 1, λ = 0.9, r = (0, 0, 1), V = (0.5, 0.4, 0.3):
    # δ = (0 + 0.4 − 0.5, 0 + 0.3 − 0.4, 1 + 0 − 0.3) = (−0.1, −0.1, 0.7)
    # A2 = 0.7, A1 = −0.1 + 0.9·0.7 = 0.53, A0 = −0.1 + 0.9·0.53 = 0.377; R = A + V = (0.877, 0.93, 1.0)
    advantages, returns = gae(T([0, 0, 1]), T([0.5, 0.4, 0.3]), B([True, True, True]), gamma=1.0, lam=0.9)
    assert advantages[0].tolist() == pytest.approx([0.377, 0.53, 0.7])
    assert returns[0].tolist() == pytest.approx([0.877, 0.93, 1.0])
    # γ = 0.5, λ = 1: A1 = 1 − 0.3 = 0.7, A0 = 0 + 0.5·0.3 − 0.4 + 0.5·0.7 = 0.1
    advantages, _ = gae(T([0, 1]), T([0.4, 0.3]), B([True, True]), gamma=0.5, lam=1.0)
    assert advantages[0].tolist() == pytest.approx([0.1, 0.7])


def test_gae_ignores_positions_off_the_response():
    # a prompt position before and padding after: the response's advantages are those of the plain case
    advantages, returns = gae(T([9, 0, 0, 1, 5]), T([7, 0.5, 0.4, 0.3, 8]), B([False, True, True, True, False]),
                              gamma=1.0, lam=0.9)
    assert advantages[0].tolist() == pytest.approx([0.0, 0.377, 0.53, 0.7, 0.0])
    assert returns[0].tolist() == pytest.approx([0.0, 0.877, 0.93, 1.0, 0.0])


def test_masked_whiten():
    whitened = masked_whiten(T([1.0, 3.0, 100.0]), B([True, True, False]))
    assert whitened[0].tolist() == pytest.approx([-1.0, 1.0, 0.0], abs=1e-6)


def test_ppo_policy_loss_hand_values_and_clipping():
    # ε = 0.2. Token 1: ρ = e^0.5 = 1.6487, A = 1 → max(−1.6487, −1.2) = −1.2 (clipped, no gradient).
    # Token 2: ρ = e^−0.5 = 0.6065, A = 1 → max(−0.6065, −0.8) = −0.6065. Token 3: ρ = e^0.1, A = −2 → 2.2103.
    logps = T([-0.5, -1.5, -0.9]).requires_grad_()
    loss, clipped = ppo_policy_loss(logps, T([-1.0, -1.0, -1.0]), T([1.0, 1.0, -2.0]), B([True, True, True]), 0.2)
    assert loss.item() == pytest.approx((-1.2 - math.exp(-0.5) + 2 * math.exp(0.1)) / 3)
    assert clipped.item() == pytest.approx(1 / 3)
    loss.backward()
    assert logps.grad[0, 0].item() == 0.0  # beyond the clip range: the clipped term has no gradient
    assert logps.grad[0, 1].item() == pytest.approx(-math.exp(-0.5) / 3)


def test_ppo_value_loss_hand_values():
    # V = 0.6, V_old = 0, R = 1, ε_v = 0.2: unclipped (0.6 − 1)² = 0.16, clipped (0.2 − 1)² = 0.64 → ½·0.64
    loss, clipped = ppo_value_loss(T([0.6]), T([0.0]), T([1.0]), B([True]), 0.2)
    assert loss.item() == pytest.approx(0.32) and clipped.item() == 1.0
    # V = 1, V_old = 0.5, R = 0: unclipped 1, clipped (0.7)² = 0.49 → ½·1; the masked token does not count
    loss, clipped = ppo_value_loss(T([1.0, 50.0]), T([0.5, 0.0]), T([0.0, 0.0]), B([True, False]), 0.2)
    assert loss.item() == pytest.approx(0.5) and clipped.item() == 0.0


def test_rloo_advantages_hand_values():
    # k = 4: baseline_i = (12 − R_i)/3 = (11/3, 10/3, 3, 2) → A = (−8/3, −4/3, 0, 4)
    assert rloo_advantages(torch.tensor([1.0, 2.0, 3.0, 6.0]), 4).tolist() == pytest.approx([-8 / 3, -4 / 3, 0.0, 4.0])
    # two prompts, k = 2: A_i = R_i − R_j
    assert rloo_advantages(torch.tensor([1.0, 3.0, 5.0, 5.0]), 2).tolist() == [-2.0, 2.0, 0.0, 0.0]
    # REINFORCE: −mean(A · ℓ) = −mean(1·(−2), 0.5·(−4)) = 2
    assert rloo_loss(torch.tensor([-2.0, -4.0]), torch.tensor([1.0, 0.5])).item() == pytest.approx(2.0)


def test_grpo_advantages_hand_values():
    # (1, 2, 3): mean 2, sample std 1 → (−1, 0, 1)/(1 + 1e−4)
    assert grpo_advantages(torch.tensor([1.0, 2.0, 3.0]), 3).tolist() == pytest.approx([-1 / 1.0001, 0.0, 1 / 1.0001])
    # (0, 4): mean 2, sample std 2√2 → ±1/√2; (5, 5): no spread → 0
    advantages = grpo_advantages(torch.tensor([0.0, 4.0, 5.0, 5.0]), 2)
    assert advantages.tolist() == pytest.approx([-2 / (2 * math.sqrt(2) + 1e-4), 2 / (2 * math.sqrt(2) + 1e-4), 0, 0])


def test_grpo_loss_hand_values():
    # ρ = 1 (on-policy), Â = 0.5, β = 0.1; KL_t = e^d − d − 1 with d = log π_ref − log π_θ = (−0.5, 0):
    # (e^−0.5 − 0.5, 0) = (0.1065307, 0); per token −(0.5 − 0.1·KL) → mean over the response's 2 tokens
    kl = math.exp(-0.5) - 0.5
    loss, metrics = grpo_loss(T([-1.0, -2.0, 0.0]), T([-1.0, -2.0, 0.0]), T([-1.5, -2.0, 9.0]), T(0.5),
                              B([True, True, False]), clip_range=0.2, beta=0.1)
    assert loss.item() == pytest.approx(-(0.5 - 0.1 * kl + 0.5) / 2)
    assert metrics["kl_k3"].item() == pytest.approx(kl / 2)


def test_rank_pairs_and_online_dpo_loss():
    chosen, valid = rank_pairs(torch.tensor([1.0, 0.0, 2.0, 2.0, -1.0, 3.0]))
    assert chosen.tolist() == [1, 0, 0, 1, 0, 1] and valid.tolist() == [1, 1, 0, 0, 1, 1]
    # pair 1: chosen Δ = −1 − (−1.5) = 0.5, rejected Δ = −2 − (−1.5) = −0.5, β = 1 → −log σ(1); pair 2 ties: left out
    batch = RolloutBatch(2, *([torch.zeros(4, 1)] * 3), mask=B([True], [True], [True], [True]),
                         rewards=torch.tensor([1.0, 0.0, 2.0, 2.0]), old_logps=torch.zeros(4, 1),
                         ref_logps=torch.full((4, 1), -1.5), logps=torch.tensor([[-1.0], [-2.0], [-9.0], [0.0]]))
    batch.extras = dict(zip(("chosen", "valid"), rank_pairs(batch.rewards)))
    loss, metrics = _online_dpo_loss(batch, {"beta": 1.0})
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    assert metrics["pairs/valid"].item() == 0.5


def test_una_online_loss_hand_values():
    # β = 0.5, ℓ − ℓ_base = 2 → σ(1) = 0.7310586; reward 0 → σ(0) = 0.5: (0.2310586)²
    loss = una_online_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([0.0]), beta=0.5)
    assert loss.item() == pytest.approx(0.2310586 ** 2, rel=1e-6)
    # the implicit score at the target: no loss
    assert una_online_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]), 0.03).item() == 0.0


def test_rollout_rows_slice_every_per_row_tensor():
    batch = RolloutBatch(2, *([torch.arange(4.0)[:, None]] * 3), mask=torch.ones(4, 1, dtype=torch.bool),
                         rewards=torch.arange(4.0), old_logps=torch.zeros(4, 1), ref_logps=torch.zeros(4, 1),
                         extras={"advantages": torch.arange(4.0) * 10})
    part = batch.rows(2, 4)
    assert part.size == 2 and part.rewards.tolist() == [2.0, 3.0]
    assert part.extras["advantages"].tolist() == [20.0, 30.0] and part.input_ids[:, 0].tolist() == [2.0, 3.0]


def test_gsm8k_answer_and_reward():
    assert gsm8k_answer("She sold 48 + 24 = 72 clips.\n#### 72") == "72"
    assert gsm8k_answer("so the total is 1,234.") == "1234"
    assert gsm8k_answer("It costs $3.50, then 18.0 in all") == "18"
    assert gsm8k_answer("no number here") is None
    record = SFTRecord("How many?", "Natalia sold 48/2 = 24 clips in May.\n#### 72")
    assert gsm8k_reward(record, "In total 72 clips.", []) == 1.0
    assert gsm8k_reward(record, "#### 72.0", []) == 1.0
    assert gsm8k_reward(record, "71", []) == 0.0
    with pytest.raises(DataError, match="no reference answer"):
        gsm8k_reward(SFTRecord("q", "a chosen answer"), "72", [])


@pytest.fixture(scope="module")
def tiny():
    from suite.modeling.models import load_model

    return load_model("tiny-llama")


def test_right_aligned_log_probs_equal_the_offline_ones(tiny):
    """Rows padded on the left with explicit positions give the same response log-probs as the offline
    trainer's right-padded batches, from the response positions' logits alone."""
    from suite.modeling.sequences import encode_sequence, pad_sequences, sequence_logps

    model, tokenizer = tiny.model, tiny.tokenizer
    sequences = [encode_sequence(tokenizer, "Hi there, how are you?", "Fine, thanks", 64),
                 encode_sequence(tokenizer, "A much longer prompt about a great many things", "ok", 64)]
    expected, _ = sequence_logps(model, **pad_sequences(sequences, tokenizer.pad_token_id))
    aligned = right_aligned(sequences, tokenizer.pad_token_id)
    width = aligned["width"]
    logps = response_logps(model, aligned["input_ids"], aligned["attention_mask"], aligned["position_ids"], width, 1.0)
    mask = aligned["response_mask"][:, -width:]
    assert (logps * mask).sum(-1).tolist() == pytest.approx(expected.tolist(), abs=1e-4)
    # at temperature τ the log-probs are those of softmax(logits / τ): less peaked at τ = 2, so not equal
    tempered = response_logps(model, aligned["input_ids"], aligned["attention_mask"], aligned["position_ids"], width, 2.0)
    assert not torch.allclose(tempered * mask, logps * mask)


def test_ptx_loss_adds_the_demonstrations_mean_token_nll():
    # demonstration log-probs: row 1 tokens −1, −3 (third off the mask); row 2 token −2 → mean over 3 tokens = −2
    logps, mask = T([-1.0, -3.0, -9.0], [-2.0, 0.0, 0.0]), B([True, True, False], [True, False, False])
    assert ptx_loss(torch.tensor(0.5, dtype=torch.float64), logps * mask, mask, 0.1).item() == pytest.approx(0.5 + 0.1 * 2.0)
    assert ptx_loss(torch.tensor(0.5, dtype=torch.float64), logps * mask, mask, 0.0).item() == pytest.approx(0.5)
