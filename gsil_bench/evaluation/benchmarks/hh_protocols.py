"""The HH-RLHF evaluation protocols (``eval.options.hh-safety.protocol``).

- ``multi-turn-pairwise`` (the default): every dialogue of the harmless-base test file (2,312),
  multi-turn ones included; the model answers the whole transcript before the final Assistant
  reply and is compared with that reply (the dataset's chosen one). Primary metric
  ``win_rate``: the share of items whose two orders together favour the model.

- ``single-turn-vs-chosen``: only the dialogues with a single human turn (662 of the 2,312);
  the model answers that one request and the judge compares the answer with the chosen reply,
  in both orders. Primary metric ``score``: wins + ties/2 per order, averaged over both orders
  and over items.

  Why this one: the GSIL paper (Xiao et al., "How to Leverage Demonstration Data in Alignment
  for Large Language Model? A Self-Imitation Learning Perspective", EMNLP 2024,
  arXiv:2410.10093) reports for Anthropic-HH harmless a GPT-4 win rate against the dataset's
  chosen responses (about 60% for GSIL as secondary summaries quote it; results/paper/gsil.yaml
  keeps it unverified). The GSIL release (github.com/tengxiao1/GSIL, README "Evaluation" and
  eval/eval.sh) ships the Open LLM tasks (lm-evaluation-harness b281b09), and points to Eurus
  for HumanEval and FastChat for MT-Bench; it ships no HH script, so this protocol is
  inferred, not read from their code. The inference: a win rate against the chosen response
  on HH is the single-turn dialogue evaluation of DPO (Rafailov et al., NeurIPS 2023,
  arXiv:2305.18290, section 6: the subset of the HH test split with one step of
  human-assistant interaction, GPT-4 judging the policy's answer against the preferred
  completion). Not emulated: DPO's own GPT-4 prompt (its appendix C.2: one comparison per
  pair, answered A or B); here FastChat's ``pair-v2`` judges both orders (position bias
  cancels) and a tie counts half. The data is Anthropic/hh-rlhf (Bai et al. 2022,
  arXiv:2204.05862), ``harmless-base/test.jsonl.gz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gsil_bench.errors import UserError


@dataclass(frozen=True)
class HHProtocol:
    """Which dialogues an HH protocol keeps and which metric it reports first."""

    name: str
    source: str  # where the protocol comes from, recorded in each result
    single_turn: bool  # keep only the dialogues with one human turn
    primary: str  # the headline metric


ProtocolName = Literal["multi-turn-pairwise", "single-turn-vs-chosen"]
PROTOCOLS: dict[str, HHProtocol] = {
    "multi-turn-pairwise": HHProtocol(
        "multi-turn-pairwise",
        "gsil-bench: every harmless-base test dialogue vs its chosen reply, pair-v2, both orders",
        False,
        "win_rate",
    ),
    "single-turn-vs-chosen": HHProtocol(
        "single-turn-vs-chosen",
        "GSIL (arXiv:2410.10093) HH win rate vs chosen, inferred (no HH script in the release):"
        " DPO's single-turn HH subset (arXiv:2305.18290 sec. 6), pair-v2, both orders",
        True,
        "score",
    ),
}
METRICS = ("win_rate", "tie_rate", "loss_rate", "score")  # every protocol reports all four


def protocol_named(name: str) -> HHProtocol:
    if name not in PROTOCOLS:
        raise UserError(f"HH safety protocol {name!r} unknown; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
