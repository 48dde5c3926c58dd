"""AlpacaEval-style win rates: the instruction set, annotation checks, and the metrics computed by the
``alpaca-eval`` package itself (its win rate and its length-controlled GLM, Dubois et al. 2024,
arXiv 2404.04475), never re-implemented here.

Conventions are AlpacaEval's: an annotation compares ``output_1`` (the reference, GPT-4-turbo's
``gpt4_1106_preview`` answer for AlpacaEval 2.0) with ``output_2`` (the evaluated model's answer);
``preference`` ∈ [1, 2], 2 = ``output_2`` preferred, 1.5 = tie. The win rate is mean(preference − 1) × 100.

The length-controlled (LC) win rate fits alpaca-eval's ``length_controlled_v1`` GLM, which reads two
files of the ``tatsu-lab/alpaca_eval`` Hugging Face dataset: ``df_gamed.csv`` (the annotations of the
verbose / concise GPT-4-turbo baselines it regularises towards, with each instruction's difficulty).
alpaca-eval downloads it from the hub; offline it is taken from, in order: ``$ALIGNSUITE_ALPACA_EVAL_GLM``
(a folder holding ``df_gamed.csv``), ``$ALIGNSUITE_DATA/train/alpaca_eval_glm/``, or the Hugging Face
cache. Without it the LC win rate is recorded as missing, with the reason — never guessed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import ConfigError, DataError

REFERENCE_GENERATOR = "gpt4_1106_preview"  # AlpacaEval 2.0's baseline
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
LEADERBOARD_CSV = f"leaderboards/data_AlpacaEval_2/{ANNOTATOR}_leaderboard.csv"  # inside the alpaca_eval package
ANNOTATIONS_MIRROR = "train/alpaca_eval_annotations/weighted_alpaca_eval_gpt4_turbo.jsonl.gz"
GLM_FILE = "df_gamed.csv"
GLM_ENV = "ALIGNSUITE_ALPACA_EVAL_GLM"
GLM_MIRROR_DIR = "train/alpaca_eval_glm"
# The revision of the hub dataset whose df_gamed.csv the published LC numbers were computed with, and that
# file's sha256 (as pinned by other reproductions of AlpacaEval 2.0); a different file is refused.
GLM_REVISION = "2edc6fad8be6b14ea7230aabfd08188da6b8b814"
GLM_SHA256 = "97aeec3f1c7de6dee6fd31fe66f1702623f4614c3efe1c6fc5f4927cd5fd674d"


def alpaca_eval():
    """The alpaca_eval package (its import warns about pkg_resources; that is its business, not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import alpaca_eval as package
        import alpaca_eval.metrics  # noqa: F401
        import alpaca_eval.metrics.glm_winrate  # noqa: F401
        import alpaca_eval.completion_parsers  # noqa: F401
    return package


# -- instruction sets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    index: int  # position in the full set: AlpacaEval's instruction index (the GLM's instruction_difficulty key)
    instruction: str
    reference: str | None  # the reference answer (output_1 of every comparison)
    dataset: str = ""


def mirror_root() -> Path:
    root = os.environ.get("ALIGNSUITE_DATA")
    if not root:
        raise ConfigError("AlpacaEval data: set ALIGNSUITE_DATA to the local data mirror (it holds "
                          f"{ANNOTATIONS_MIRROR})")
    return Path(root)


def annotations_path() -> Path:
    path = mirror_root() / ANNOTATIONS_MIRROR
    if not path.is_file():
        raise DataError(f"{path}: AlpacaEval annotations not found in the mirror")
    return path


def check_preferences(frame, origin: str) -> None:
    """Every preference is a number in [1, 2] (NaN allowed: an unjudged row, as upstream has)."""
    import pandas as pd

    preferences = pd.to_numeric(frame["preference"], errors="coerce")
    bad = frame.index[(preferences.notna() & ((preferences < 1) | (preferences > 2)))
                      | (preferences.isna() & frame["preference"].notna())]
    if len(bad):
        row = bad[0]
        value = frame["preference"].loc[row]
        value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
        raise DataError(f"{origin}: row {int(row) + 1}, key 'preference': {value} is "
                        "outside [1, 2] (AlpacaEval's scale: 1 = output_1 preferred, 2 = output_2 preferred)")


@functools.lru_cache(maxsize=2)
def _load_annotations(path: str):
    import pandas as pd

    frame = pd.read_json(path, lines=True)
    needed = ["instruction", "output_1", "generator_1", "output_2", "generator_2", "preference"]
    missing = [key for key in needed if key not in frame.columns]
    if missing:
        raise DataError(f"{path}: annotations lack the key(s) {missing}")
    check_preferences(frame, path)
    return frame


def load_annotations(path: str | Path | None = None):
    """The GPT-4-turbo annotations (one row per instruction × generator), with ``index`` = the
    instruction's position in AlpacaEval's 805-instruction set."""
    frame = _load_annotations(str(path or annotations_path())).copy()
    order = {item.instruction: item.index for item in alpaca_eval_instructions(path)}
    frame["index"] = frame["instruction"].map(order)
    if frame["index"].isna().any():
        row = int(frame.index[frame["index"].isna()][0]) + 1
        raise DataError(f"{path or annotations_path()}: row {row}: instruction not in the reference set")
    frame["index"] = frame["index"].astype(int)
    return frame


@functools.lru_cache(maxsize=2)
def _instructions(path: str) -> tuple[Instruction, ...]:
    frame = _load_annotations(path)
    # the reference model judged against itself: one row per instruction, in AlpacaEval's order
    block = frame[frame["generator_2"] == REFERENCE_GENERATOR]
    if len(block) == 0 or block["instruction"].duplicated().any():
        raise DataError(f"{path}: expected one {REFERENCE_GENERATOR} row per instruction")
    return tuple(Instruction(i, row.instruction, row.output_1, str(getattr(row, "dataset", "") or ""))
                 for i, row in enumerate(block.itertuples()))


def alpaca_eval_instructions(path: str | Path | None = None) -> tuple[Instruction, ...]:
    """AlpacaEval's 805 instructions with GPT-4-turbo's reference answers, from the mirror."""
    return _instructions(str(path or annotations_path()))


def load_instruction_file(path: str | Path) -> tuple[Instruction, ...]:
    """A JSONL instruction set: ``instruction`` (required), ``output`` or ``reference`` (the reference answer,
    required to compute a win rate against it), ``dataset`` (optional)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: instruction file not found")
    from suite.data.loaders import read_json_rows

    items = []
    for number, row in read_json_rows(path):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {number}: expected a JSON object")
        instruction = row.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(f"{path}: row {number}, key 'instruction': missing or empty")
        reference = row.get("output", row.get("reference"))
        if not isinstance(reference, str) or not reference.strip():
            raise DataError(f"{path}: row {number}, key 'output': the reference answer is missing or empty")
        items.append(Instruction(len(items), instruction, reference, str(row.get("dataset", ""))))
    if not items:
        raise DataError(f"{path}: no instructions")
    return tuple(items)


def instruction_set(source: str | None = None, subset: int | None = None, seed: int = 0) -> tuple[Instruction, ...]:
    """``source``: None / "alpaca_eval" (the 805 from the mirror) or a JSONL file; ``subset``: a seeded
    sample of that many instructions (kept in their original order), for CPU budgets."""
    items = alpaca_eval_instructions() if source in (None, "alpaca_eval") else load_instruction_file(source)
    if subset is not None and subset < len(items):
        chosen = sorted(random.Random(seed).sample(range(len(items)), subset))
        items = tuple(items[i] for i in chosen)
    return items


# -- metrics -----------------------------------------------------------------------------------------


def glm_file() -> Path | None:
    """A local ``df_gamed.csv`` for the LC GLM, or None (then alpaca-eval's own hub lookup is tried)."""
    candidates = []
    if os.environ.get(GLM_ENV):
        candidates.append(Path(os.environ[GLM_ENV]) / GLM_FILE)
    if os.environ.get("ALIGNSUITE_DATA"):
        candidates.append(Path(os.environ["ALIGNSUITE_DATA"]) / GLM_MIRROR_DIR / GLM_FILE)
    for path in candidates:
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != GLM_SHA256:
                raise DataError(f"{path}: sha256 {digest} is not that of {GLM_FILE} at tatsu-lab/alpaca_eval@"
                                f"{GLM_REVISION[:8]} ({GLM_SHA256}); the LC numbers would not be AlpacaEval's")
            return path
    return None


@contextlib.contextmanager
def _glm_data(path: Path | None):
    """alpaca-eval's GLM downloads df_gamed.csv with hf_hub_download; hand it the local copy instead."""
    module = alpaca_eval().metrics.glm_winrate
    if path is None:
        yield
        return
    original = module.hf_hub_download

    def local(repo_id, filename, **kwargs):
        return str(path) if filename == GLM_FILE else original(repo_id=repo_id, filename=filename, **kwargs)

    module.hf_hub_download = local
    try:
        yield
    finally:
        module.hf_hub_download = original


class LengthControlUnavailable(RuntimeError):
    pass


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def win_rate_metrics(frame, length_controlled: bool = True) -> dict:
    """AlpacaEval's metrics of one generator's annotations (a frame with ``preference``, ``output_1``,
    ``output_2``, ``generator_1``, ``generator_2``, ``index``): win rate, its standard error, wins / losses /
    draws, discrete win rate, average length (characters, as the leaderboard), and — when the GLM data is
    available — the length-controlled win rate and its standard error (else ``lc_missing`` says why)."""
    ae = alpaca_eval()
    frame = frame.reset_index(drop=True)
    check_preferences(frame, "annotations")
    base = ae.metrics.get_winrate(frame)
    metrics = {
        "win_rate": _finite(base["win_rate"]), "standard_error": _finite(base["standard_error"]),
        "n_wins": int(base["n_wins"]), "n_wins_base": int(base["n_wins_base"]), "n_draws": int(base["n_draws"]),
        "n_total": int(base["n_total"]), "discrete_win_rate": _finite(base["discrete_win_rate"]),
        "avg_length": float(frame["output_2"].str.len().mean()),
        "length_controlled_winrate": None, "lc_standard_error": None,
    }
    if not length_controlled:
        return metrics
    try:
        lc = length_controlled_winrate(frame)
    except LengthControlUnavailable as exc:
        metrics["lc_missing"] = str(exc)
        return metrics
    metrics.update(length_controlled_winrate=_finite(lc["length_controlled_winrate"]),
                   lc_standard_error=_finite(lc["lc_standard_error"]))
    return metrics


def length_controlled_winrate(frame) -> dict:
    """alpaca-eval's ``get_length_controlled_winrate`` (GLM ``length_controlled_v1``) on one generator's
    annotations, with the annotations indexed by instruction (the GLM's instruction-difficulty key)."""
    ae = alpaca_eval()
    frame = frame.set_index("index", drop=False)
    frame.index.name = None
    frame = frame.drop(columns=["index"])
    local = glm_file()
    with _glm_data(local):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ae.metrics.get_length_controlled_winrate(
                    frame, save_weights_dir=None, is_add_glm_preference_inplace=False, is_warn_extreme_changes=False)
        except (OSError, ValueError) as exc:
            if local is not None or not _is_hub_failure(exc):
                raise
            raise LengthControlUnavailable(
                f"the length-controlled GLM needs {GLM_FILE} of the tatsu-lab/alpaca_eval hub dataset "
                f"(revision {GLM_REVISION[:8]}), which is neither reachable nor in the Hugging Face cache; put it in "
                f"${GLM_ENV}/ or $ALIGNSUITE_DATA/{GLM_MIRROR_DIR}/ ({type(exc).__name__})") from None


def _is_hub_failure(exc: BaseException) -> bool:
    name = type(exc).__name__
    return any(word in name for word in ("Offline", "LocalEntryNotFound", "Connection", "HTTP", "Hub", "Timeout")) \
        or "offline" in str(exc).lower() or "huggingface" in str(exc).lower()


def paired_comparison(preferences_a: dict, preferences_b: dict, resamples: int = 2000, seed: int = 0) -> dict:
    """Run A vs run B on the same instructions, each judged against the same reference: the difference of
    their win rates (points), its paired-bootstrap 95 % interval and standard error, and how often A's
    preference beats B's. ``preferences_*``: instruction index → preference ∈ [1, 2]."""
    import numpy as np

    shared = sorted(set(preferences_a) & set(preferences_b))
    if not shared:
        raise DataError("paired comparison: the two runs share no judged instruction")
    a = np.array([preferences_a[i] for i in shared], dtype=float) - 1
    b = np.array([preferences_b[i] for i in shared], dtype=float) - 1
    delta = (a - b) * 100
    rng = np.random.default_rng(seed)
    boot = delta[rng.integers(0, len(delta), size=(resamples, len(delta)))].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"n": len(shared), "win_rate_a": float(a.mean() * 100), "win_rate_b": float(b.mean() * 100),
            "difference": float(delta.mean()), "standard_error": float(delta.std(ddof=1) / math.sqrt(len(delta)))
            if len(delta) > 1 else None, "ci95": [float(low), float(high)],
            "significant": bool(low > 0 or high < 0), "a_better_share": float((a > b).mean() + 0.5 * (a == b).mean())}


def published_leaderboard():
    """The AlpacaEval 2.0 leaderboard as shipped in the alpaca-eval package."""
    import importlib.resources

    import pandas as pd

    alpaca_eval()
    return pd.read_csv(importlib.resources.files("alpaca_eval") / LEADERBOARD_CSV, index_col=0)
