"""LLM judge with alpaca-eval's own evaluator configurations and prompt templates (read from the installed
``alpaca-eval`` package, default ``weighted_alpaca_eval_gpt4_turbo``, AlpacaEval 2.0's annotator).

The judge sees the template's prompt (instruction, ``output_1`` as model "m", ``output_2`` as model "M") and
its next-token distribution is read as the config's ``logprob_parser`` reads GPT-4-turbo's: preference =
2 − P(m) / (P(m) + P(M)). Each comparison is asked twice, with the answers in both orders, and the two
preferences (the swapped one mirrored) are averaged, which cancels the judge's position bias.

Backends: a local Hugging Face causal LM (``model``: a name ``suite.modeling.models.load_model`` knows — local path, hub
id, the embedded model, ``tiny-llama``), or an OpenAI-compatible endpoint (``endpoint``: base URL such as
``http://host:8000/v1``, ``model_name``: the served model), asked through ``/chat/completions`` with
logprobs, and parsed by alpaca-eval's own ``logprob_parser``.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import torch

from suite.core.errors import ConfigError, SuiteError
from suite.evaluation.judges.base import check_keys, register_judge
from suite.evaluation.winrate import alpaca_eval

DEFAULT_CONFIG = "weighted_alpaca_eval_gpt4_turbo"


def evaluator_config(name: str) -> dict:
    """alpaca-eval's evaluator config ``name`` (its configs.yaml) with its prompt template's text."""
    import yaml

    root = alpaca_eval().constants.EVALUATORS_CONFIG_DIR
    path = root / name / "configs.yaml"
    if not path.is_file():
        known = sorted(p.name for p in root.iterdir() if (p / "configs.yaml").is_file())
        raise ConfigError(f"eval.judge.config: alpaca-eval has no evaluator config {name!r}; e.g. {', '.join(known[:8])}")
    config = yaml.safe_load(path.read_text())[name]
    if config.get("fn_completion_parser") != "logprob_parser":
        raise ConfigError(f"eval.judge.config: {name} parses {config.get('fn_completion_parser')!r} completions; the "
                          "suite's LLM judge reads token probabilities (a config with fn_completion_parser: "
                          "logprob_parser, e.g. weighted_alpaca_eval_gpt4_turbo)")
    config["template_text"] = (root / config["prompt_template"]).read_text()
    return config


class LLMJudge:
    name = "llm"

    def __init__(self, config_name: str = DEFAULT_CONFIG, batch_size: int = 1):
        self.config_name = config_name
        self.config = evaluator_config(config_name)
        parser = self.config.get("completion_parser_kwargs", {})
        self.numerator, self.denominators = parser["numerator_token"], list(parser["denominator_tokens"])
        self.batch_size = batch_size

    def prompts(self, instructions, outputs_1, outputs_2) -> list[str]:
        import pandas as pd

        frame = pd.DataFrame({"instruction": instructions, "output_1": outputs_1, "output_2": outputs_2})
        prompts, _ = alpaca_eval().utils.make_prompts(frame, self.config["template_text"])
        return prompts

    def first_preferences(self, prompts: list[str]) -> list[float]:
        raise NotImplementedError

    def preferences(self, instructions, outputs_1, outputs_2):
        forward = self.first_preferences(self.prompts(instructions, outputs_1, outputs_2))
        swapped = self.first_preferences(self.prompts(instructions, outputs_2, outputs_1))
        return [(f + (3.0 - s)) / 2.0 for f, s in zip(forward, swapped)]

    def describe(self) -> dict:
        return {"type": self.name, "config": self.config_name, "orders": "both (position bias averaged out)"}


class LocalLLMJudge(LLMJudge):
    def __init__(self, model, tokenizer, source: str, config_name: str = DEFAULT_CONFIG, batch_size: int = 1):
        super().__init__(config_name, batch_size)
        self.model, self.tokenizer, self.source = model.eval(), tokenizer, source
        self.token_ids = [self._token_id(t) for t in [self.numerator] + self.denominators]

    def _token_id(self, token: str) -> int:
        ids = self.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise SuiteError(f"LLM judge {self.source}: the answer token {token!r} is not one token of its tokenizer")
        return ids[0]

    def encode(self, prompt: str) -> list[int]:
        from suite.modeling.sequences import FALLBACK_TEMPLATE

        messages = alpaca_eval().utils.prompt_to_chatml(prompt)
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        text = "".join(FALLBACK_TEMPLATE.format(**m) for m in messages) + "assistant: "
        return self.tokenizer(text)["input_ids"]

    def answer_logprobs(self, prompts: list[str]) -> list[dict[str, float]]:
        """Log-probabilities of the answer tokens (numerator and denominators) as the judge's next token."""
        from suite.modeling.sequences import left_padded_prompts

        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(prompts), self.batch_size):
                encoded = [self.encode(p) for p in prompts[start : start + self.batch_size]]
                input_ids, attention = left_padded_prompts(encoded, self.tokenizer.pad_token_id)
                logits = self.model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits[:, -1]
                logps = torch.log_softmax(logits.float(), dim=-1)
                tokens = [self.numerator] + self.denominators
                for row in logps:
                    out.append({t: float(row[i]) for t, i in zip(tokens, self.token_ids)})
        return out

    def first_preferences(self, prompts):
        results = []
        for logps in self.answer_logprobs(prompts):
            denominator = math.log(sum(math.exp(logps[t]) for t in self.denominators))
            results.append(2.0 - math.exp(logps[self.numerator] - denominator))
        return results

    def describe(self):
        return {**super().describe(), "model": self.source}


class EndpointLLMJudge(LLMJudge):
    def __init__(self, endpoint: str, model_name: str, config_name: str = DEFAULT_CONFIG, timeout: float = 120.0,
                 api_key: str | None = None):
        super().__init__(config_name, 1)
        self.endpoint, self.model_name, self.timeout, self.api_key = endpoint.rstrip("/"), model_name, timeout, api_key

    def _request(self, prompt: str) -> dict:
        kwargs = {k: v for k, v in self.config.get("completions_kwargs", {}).items()
                  if k not in ("model_name", "requires_chatml")}
        body = {"model": self.model_name, "messages": alpaca_eval().utils.prompt_to_chatml(prompt), **kwargs}
        url = f"{self.endpoint}/chat/completions"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise SuiteError(f"LLM judge: endpoint {url} answered HTTP {exc.code}: "
                             f"{exc.read()[:300].decode(errors='replace')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SuiteError(f"LLM judge: cannot reach endpoint {url} ({getattr(exc, 'reason', exc)})") from None
        try:
            return payload["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise SuiteError(f"LLM judge: endpoint {url} returned no choices: {str(payload)[:300]}") from None

    def first_preferences(self, prompts):
        parser = alpaca_eval().completion_parsers.logprob_parser
        kwargs = self.config.get("completion_parser_kwargs", {})
        results = []
        for prompt in prompts:
            choice = self._request(prompt)
            if not (choice.get("logprobs") or {}).get("content"):
                raise SuiteError(f"LLM judge: endpoint {self.endpoint} returned no logprobs (it must support "
                                 "logprobs / top_logprobs on /chat/completions)")
            value = parser(choice, **kwargs)[0]
            if value is None or not math.isfinite(value):
                raise SuiteError(f"LLM judge: endpoint {self.endpoint} gave none of the answer tokens "
                                 f"{[self.numerator] + self.denominators} among its top logprobs")
            results.append(float(value))
        return results

    def describe(self):
        return {**super().describe(), "endpoint": self.endpoint, "model": self.model_name}


@register_judge("llm")
def _build(spec: dict) -> LLMJudge:
    check_keys(spec, {"model", "endpoint", "model_name", "config", "batch_size", "timeout", "api_key_env"}, "llm")
    config = spec.get("config", DEFAULT_CONFIG)
    if spec.get("endpoint"):
        import os

        key = os.environ.get(spec["api_key_env"]) if spec.get("api_key_env") else None
        return EndpointLLMJudge(str(spec["endpoint"]), str(spec.get("model_name") or spec.get("model") or "default"),
                                config, float(spec.get("timeout", 120)), key)
    if not spec.get("model"):
        raise ConfigError("eval.judge: an llm judge needs a model (local path / hub id) or an endpoint URL")
    from suite.modeling.models import load_model

    try:
        loaded = load_model(str(spec["model"]))
    except (ConfigError, OSError) as exc:
        raise ConfigError(f"eval.judge.model: cannot load the judge {spec['model']!r}: {exc}") from None
    return LocalLLMJudge(loaded.model, loaded.tokenizer, str(spec["model"]), config, int(spec.get("batch_size", 1)))
