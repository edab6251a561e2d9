"""The mini suite: four small programmatic domains mirroring the GSIL paper's benchmarks.

math ~ GSM8K, code ~ HumanEval, dialogue ~ MT-Bench, safety ~ Anthropic-HH, all generated
offline from a seed and short enough that a 0.9M-parameter model learns them on a laptop CPU.
The tiny base model trains on ``base``, the losses align on ``align``, ``test`` is scored by
``gsil_bench.minisuite.scoring.score_items``.

Sizes (``n_base``, ``n_align``, ``n_test``) are totals over the chosen domains, split evenly
(the first domains take the remainder). Per domain the tasks are drawn from one random stream,
test first, then align, then base, all distinct: no prompt (no first user turn, no code
function) is in two splits, and changing ``n_base`` leaves test and align as they were.

What makes the suite an instrument rather than a recall test:
each domain has an *alignment skill* (math: a product or quotient step; code: a set of
function families; dialogue: comma-separated lists; safety: refusing harmful requests) that
``skill_share`` of the align and test tasks exercise but only ``<domain>_base_skill_share``
of the base split, so the base model does it poorly and aligning can teach it; and
``heldout_share`` of the test items are worded with templates no training split uses, so a
score measures generalisation. Every item's ``meta`` says which it is (``skill``,
``heldout``). Every demonstration also carries a flawed ``rejected`` response, so the
``swap_rejected`` data-quality ablation works here as on preference data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from gsil_bench.data.records import Demonstration, Message
from gsil_bench.minisuite import code_tasks, dialogue_tasks, math_tasks, safety_tasks
from gsil_bench.minisuite.config import MiniSuiteConfig
from gsil_bench.minisuite.task import Split, Task, TestItem


@dataclass
class MiniSuite:
    """The three splits: ``base`` trains the tiny base model, ``align`` is what the losses
    align on (the ``mini`` data source), ``test`` is what the ``mini`` benchmark scores."""

    config: MiniSuiteConfig
    base: list[Demonstration]
    align: list[Demonstration]
    test: list[TestItem]

    def fingerprint(self) -> str:
        """sha256 of the content (demonstrations and test items), not of the config.

        It keys the cached base model, so its bytes must never change by accident.
        """
        digest = hashlib.sha256()
        digest.update(records_digest(self.base).encode())
        digest.update(records_digest(self.align).encode())
        for item in self.test:
            digest.update(json.dumps(asdict(item), sort_keys=True).encode())
        return digest.hexdigest()


def records_digest(demos: Iterable[Demonstration]) -> str:
    """sha256 over the records in order: id, prompt, response, rejected (not ``meta``).

    Unlike :func:`gsil_bench.data.records.demonstrations_fingerprint` (what a model is trained
    on, ids left out) it includes the ids: it is the part of the suite's fingerprint that keys
    the cached base model, kept byte for byte so existing caches stay valid.
    """
    digest = hashlib.sha256()
    for demo in demos:
        content = [demo.id, demo.prompt, demo.response, demo.rejected]
        digest.update(json.dumps(content, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def build_suite(config: MiniSuiteConfig | None = None) -> MiniSuite:
    """Generate the suite; the same config always gives the same suite (and fingerprint)."""
    config = config or MiniSuiteConfig()
    sizes = {
        name: _shares(getattr(config, f"n_{name}"), len(config.domains))
        for name in ("base", "align", "test")
    }
    base: list[Demonstration] = []
    align: list[Demonstration] = []
    test: list[TestItem] = []
    for position, domain in enumerate(config.domains):
        # One random stream and one set of used keys per domain, drawn test first: adding a
        # domain leaves the others unchanged, and a larger n_base leaves test and align as
        # they were. No key (prompt, function) is in two splits.
        rng = random.Random(f"gsil-bench-mini:{config.seed}:{domain}")
        seen: set[str] = set()

        n_test, n_align, n_base = (sizes[s][position] for s in ("test", "align", "base"))
        splits = (
            Split("test", config.skill_share, config.heldout_share),
            Split("align", config.skill_share),
            Split("base", config.base_skill_share(domain)),
        )
        tasks = [
            _generate(domain, config, rng, n, split, seen)
            for split, n in zip(splits, (n_test, n_align, n_base), strict=True)
        ]
        test += [_test_item(domain, i, task) for i, task in enumerate(tasks[0])]
        align += _demonstrations(domain, "align", tasks[1])
        base += _demonstrations(domain, "base", tasks[2])
    # Mix the domains so that every training batch sees all of them.
    shuffler = random.Random(f"gsil-bench-mini:{config.seed}:shuffle")
    shuffler.shuffle(base)
    shuffler.shuffle(align)
    return MiniSuite(config, base, align, test)


@functools.lru_cache(maxsize=4)
def shared_suite(config: MiniSuiteConfig) -> MiniSuite:
    """:func:`build_suite`, built once per config and process: the data source, the model
    provider and the benchmark of one run all ask for the same suite. Shared, so read only."""
    return build_suite(config)


def all_text(suite: MiniSuite) -> Iterator[str]:
    """Text to train the tokenizer on: training prompts, responses (and flawed responses,
    which the swap_rejected ablation trains on) and test questions, never test answers."""
    for demo in [*suite.base, *suite.align]:
        yield from (message["content"] for message in demo.prompt)
        yield demo.response
        if demo.rejected is not None:
            yield demo.rejected
    for item in suite.test:
        yield from item.turns


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _generate(
    domain: str, config: MiniSuiteConfig, rng: random.Random, n: int, split: Split, seen: set[str]
) -> list[Task]:
    if domain == "math":
        return math_tasks.generate(
            rng,
            n,
            split,
            seen,
            min_steps=config.math_min_steps,
            max_steps=config.math_max_steps,
            max_number=config.math_max_number,
            max_value=config.math_max_value,
        )
    if domain == "code":
        return code_tasks.generate(rng, n, split, seen)
    if domain == "dialogue":
        return dialogue_tasks.generate(
            rng,
            n,
            split,
            seen,
            min_items=config.dialogue_min_items,
            max_items=config.dialogue_max_items,
        )
    return safety_tasks.generate(rng, n, split, seen)


def _test_item(domain: str, index: int, task: Task) -> TestItem:
    return TestItem(
        id=f"mini-{domain}-{index:04d}",
        domain=domain,
        turns=list(task.turns),
        reference=task.references[-1],
        check=task.check,
        turn_references=list(task.references),
        meta=dict(task.meta),
    )


def _demonstrations(domain: str, split: str, tasks: list[Task]) -> list[Demonstration]:
    """One demonstration per task. A two-turn task alternates between its first turn and its
    second (the first answered by the reference), so both skills get trained."""
    demos = []
    for index, task in enumerate(tasks):
        turn = (len(task.turns) - 1) * (index % 2)
        prompt: list[Message] = []
        for question, answer in zip(task.turns[:turn], task.references[:turn], strict=True):
            prompt += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        prompt.append({"role": "user", "content": task.turns[turn]})
        meta = {"domain": domain, "split": split, "source": "minisuite", **task.meta}
        demo_id = f"mini-{domain}-{split}-{index:05d}"
        demos.append(
            Demonstration(prompt, task.references[turn], task.rejected[turn], demo_id, meta)
        )
    return demos
