"""Mini-suite dialogue: two-turn instruction following with checkable constraints, MT-Bench-like.

Turn 1 asks for a short list in a stated format (category members, a count, a spelling, given
words); turn 2 is asked after the model's *own* first answer and transforms it (uppercase,
reverse, sort, first/last item, the other format, a sentence of exactly N words using the
first item). Constraints are JSON-ready dicts, checked by ``check_constraint``; a turn-2
constraint is judged against what the model itself said in turn 1.

Scoring (``mini/dialogue``): constraint_accuracy, the fraction of all constraints met, and
all_satisfied, the fraction of items that met every constraint; an item's score is its
fraction met.

The alignment skill is the comma-separated format: skill conversations ask for their list
separated by commas, the others one item per line, and the base split holds few of the former.
Held-out conversations open with a wording no training split uses.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from gsil_bench.minisuite.task import (
    Draw,
    Rows,
    Scored,
    Split,
    Task,
    TestItem,
    interleaved,
    mean,
    phrase,
    unique_tasks,
)

CATEGORIES: dict[str, tuple[str, ...]] = {
    "colours": ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "black",
                "white", "grey"),
    "fruits": ("apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear", "plum",
               "lime", "melon", "kiwi"),
    "animals": ("cat", "dog", "horse", "cow", "sheep", "goat", "lion", "tiger", "bear", "wolf",
                "fox", "rabbit"),
    "countries": ("France", "Spain", "Italy", "Japan", "China", "India", "Brazil", "Canada",
                  "Mexico", "Egypt", "Kenya", "Peru"),
    "days of the week": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                         "Sunday"),
    "months": ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"),
    "vegetables": ("carrot", "potato", "onion", "pea", "bean", "leek", "cabbage", "pepper",
                   "corn", "beet", "radish", "spinach"),
    "sports": ("tennis", "football", "golf", "rugby", "hockey", "cricket", "boxing", "rowing",
               "cycling", "skiing", "judo", "swimming"),
    "instruments": ("piano", "guitar", "violin", "drum", "flute", "trumpet", "cello", "harp",
                    "banjo", "organ"),
    "birds": ("robin", "eagle", "owl", "crow", "duck", "swan", "parrot", "pigeon", "hawk",
              "sparrow", "penguin"),
    "metals": ("iron", "gold", "silver", "copper", "tin", "lead", "zinc", "nickel"),
    "planets": ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"),
    "shapes": ("circle", "square", "triangle", "oval", "star", "heart", "diamond", "hexagon"),
    "drinks": ("water", "milk", "tea", "coffee", "juice", "cocoa", "lemonade", "soda"),
}  # fmt: skip
WORDS = tuple(sorted({w.lower() for words in CATEGORIES.values() for w in words}))
# Letters all distinct, so reversing, sorting or taking an end always changes the answer.
SPELL_WORDS = tuple(w for w in WORDS if 3 <= len(w) <= 6 and len(set(w)) == len(w))
LIST_PHRASINGS = {
    "line": ("List {n} {what}, one per line.", "Give me {n} {what}, one per line.",
             "Write {n} {what}, each on its own line.", "Name {n} {what}, one per line.",
             "Tell me {n} {what}, one per line."),
    "comma": ("Name {n} {what}, separated by commas.",
              "Give {n} {what} on one line, separated by commas.",
              "List {n} {what} on one line, separated by commas.",
              "Write {n} {what}, separated by commas."),
}  # fmt: skip
HELDOUT_LIST_PHRASINGS = {
    "line": ("Please list {n} {what}, each on a new line.",),
    "comma": ("Please list {n} {what}, with commas between them.",),
}
SPELL_PHRASINGS = {
    "line": ("Spell the word {word}, one letter per line.",
             "Write the letters of {word}, one per line."),
    "comma": ("Spell the word {word} with its letters separated by commas.",
              "Write the letters of {word}, separated by commas."),
}  # fmt: skip
HELDOUT_SPELL_PHRASINGS = {
    "line": ("Spell out {word}, each letter on a new line.",),
    "comma": ("Spell out {word}, with commas between the letters.",),
}
COUNT_PHRASINGS = ("Count from {start} to {end}, {suffix}.",)
HELDOUT_COUNT_PHRASINGS = ("Please count up from {start} to {end}, {suffix}.",)
COPY_PHRASINGS = ("Write the words {words}, {suffix}.",)
HELDOUT_COPY_PHRASINGS = ("Repeat the words {words}, {suffix}.",)
FORMAT_SUFFIX = {"line": "one per line", "comma": "separated by commas"}
SENTENCES = {
    4: "{x} is really nice.",
    5: "I think {x} is nice.",
    6: "I really think {x} is nice.",
    7: "I really think that {x} is nice.",
    8: "I really do think that {x} is nice.",
}
ORDER_OPS: dict[str, Callable[[list[str]], list[str]]] = {
    "upper": lambda items: [item.upper() for item in items],
    "reverse": lambda items: items[::-1],
    "sort": lambda items: sorted(items, key=str.lower),
    "first": lambda items: items[:1],
    "last": lambda items: items[-1:],
    "same": lambda items: list(items),
    "sort_desc": lambda items: sorted(items, key=str.lower, reverse=True),
}
FOLLOW_UPS = {
    "upper": "Now write them in uppercase.",
    "reverse": "Now write them in reverse order.",
    "sort": "Now sort them alphabetically.",
    "first": "Now write only the first one.",
    "last": "Now write only the last one.",
}
# A flawed answer to each follow-up: the op done wrong (items unchanged, the other end, ...).
WRONG_OPS = {
    "upper": "same",
    "reverse": "same",
    "sort": "sort_desc",
    "first": "last",
    "last": "first",
}
# Shares of the kinds per 20 tasks, by position, so that every split has the same mix. Each
# kind's task space must hold its share of the default 2,250 per format, the line format
# taking most of the base split (category: 5 x 14 x 2 = 140 first turns per format, count:
# 999 x 2, spell: about 200, copy: millions); a kind drawn from uniformly never drifts as it
# fills up.
KIND_SHARES = {"category": 1, "count": 9, "spell": 1, "copy": 9}


def generate(
    rng: random.Random, n: int, split: Split, seen: set[str], *, min_items: int, max_items: int
) -> list[Task]:
    """``n`` conversations new to ``seen``; skill draws ask for comma-separated lists."""
    cycle = interleaved(KIND_SHARES)

    def sample(rng: random.Random, draw: Draw) -> Task:
        return _task(rng, draw, cycle[draw.index % len(cycle)], min_items, max_items)

    return unique_tasks(sample, n, rng, "dialogue", split, seen)


def _task(rng: random.Random, draw: Draw, kind: str, min_items: int, max_items: int) -> Task:
    fmt = "comma" if draw.skill else "line"
    n = rng.randint(min_items, max_items)
    turn1, items, constraints1 = _first_turn(rng, draw, kind, fmt, n)
    ops = ["reverse", "first", "last", "reformat"]
    if kind != "count":
        ops += ["upper", "sort"]
    if kind in ("category", "copy"):
        ops.append("sentence")
    turn2, reference2, rejected2, constraints2 = _second_turn(rng, rng.choice(ops), items, fmt)
    return Task(
        key=turn1,
        turns=(turn1, turn2),
        references=(format_items(items, fmt), reference2),
        rejected=(format_items(items[:-1], fmt), rejected2),
        check={"constraints": [constraints1, constraints2]},
        meta={"kind": kind},
    )


def _first_turn(
    rng: random.Random, draw: Draw, kind: str, fmt: str, n: int
) -> tuple[str, list[str], list[dict[str, Any]]]:
    count = {"type": "item_count", "n": n, "sep": fmt}
    suffix = FORMAT_SUFFIX[fmt]
    if kind == "category":
        what = rng.choice(list(CATEGORIES))
        vocab = CATEGORIES[what]
        items = rng.sample(vocab, n)
        wording = phrase(rng, draw, LIST_PHRASINGS[fmt], HELDOUT_LIST_PHRASINGS[fmt])
        text = wording.format(n=n, what=what)
        return text, items, [count, {"type": "items_from", "vocab": list(vocab), "sep": fmt}]
    if kind == "count":
        start = rng.randint(1, 999)
        items = [str(i) for i in range(start, start + n)]
        wording = phrase(rng, draw, COUNT_PHRASINGS, HELDOUT_COUNT_PHRASINGS)
        text = wording.format(start=start, end=start + n - 1, suffix=suffix)
    elif kind == "spell":
        word = rng.choice(SPELL_WORDS)
        items = list(word)
        count = {**count, "n": len(items)}
        wording = phrase(rng, draw, SPELL_PHRASINGS[fmt], HELDOUT_SPELL_PHRASINGS[fmt])
        text = wording.format(word=word)
    else:
        items = rng.sample(WORDS, n)
        words = f"{', '.join(items[:-1])} and {items[-1]}"
        text = phrase(rng, draw, COPY_PHRASINGS, HELDOUT_COPY_PHRASINGS).format(
            words=words, suffix=suffix
        )
    return text, items, [count, {"type": "items_equal", "items": items, "sep": fmt}]


def _second_turn(
    rng: random.Random, op: str, items: list[str], fmt: str
) -> tuple[str, str, str, list[dict[str, Any]]]:
    """(follow-up, reference, flawed answer, constraints), given the turn-1 reference items."""
    if op == "sentence":
        words = rng.choice(sorted(SENTENCES))
        wrong_words = words + 1 if words + 1 in SENTENCES else words - 1
        text = f"Now write a sentence of exactly {words} words that uses the first one."
        constraints: list[dict[str, Any]] = [
            {"type": "word_count", "n": words},
            {"type": "mentions_previous", "which": "first", "prev_sep": fmt},
        ]
        reference, rejected = (_sentence(n, items[0]) for n in (words, wrong_words))
        return text, reference, rejected, constraints
    if op == "reformat":
        out = "comma" if fmt == "line" else "line"
        text = "Now write them on one line, separated by commas."
        if out == "line":
            text = "Now write them one per line."
        constraint = {"type": "transform", "op": "same", "sep": out, "prev_sep": fmt}
        return text, format_items(items, out), format_items(items, fmt), [constraint]
    out = "line" if op in ("first", "last") else fmt
    constraint = {"type": "transform", "op": op, "sep": out, "prev_sep": fmt}
    reference = format_items(ORDER_OPS[op](items), out)
    rejected = format_items(ORDER_OPS[WRONG_OPS[op]](items), out)
    return FOLLOW_UPS[op], reference, rejected, [constraint]


def _sentence(words: int, item: str) -> str:
    text = SENTENCES[words].format(x=item)
    return text[0].upper() + text[1:]


def format_items(items: list[str], sep: str) -> str:
    return "\n".join(items) if sep == "line" else ", ".join(items)


# ---------------------------------------------------------------- checking


_BULLET = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def parse_items(text: str, sep: str) -> list[str]:
    """The items of an answer in the stated format; bullets and a final full stop are
    tolerated, since real chat models add them."""
    text = text.strip()
    if not text:
        return []
    if sep == "line":
        lines = [_BULLET.sub("", line.strip()) for line in text.splitlines() if line.strip()]
        return [line.rstrip(".,;").strip() for line in lines]
    return [part.strip() for part in text.rstrip(".").split(",")]


def check_constraint(constraint: dict[str, Any], answer: str, previous: str | None) -> bool:
    """Whether ``answer`` (given the model's own ``previous`` answer) meets ``constraint``."""
    kind = constraint["type"]
    if kind == "word_count":
        return len(_WORD.findall(answer)) == constraint["n"]
    if kind == "mentions_previous":
        earlier = parse_items(previous or "", constraint["prev_sep"])
        words = {w.lower() for w in _WORD.findall(answer)}
        return bool(earlier) and earlier[0].lower() in words
    items = parse_items(answer, constraint["sep"])
    if not items:
        return False
    if kind == "item_count":
        return len(items) == constraint["n"]
    if kind == "items_from":
        vocab = {v.lower() for v in constraint["vocab"]}
        lowered = [item.lower() for item in items]
        return len(set(lowered)) == len(lowered) and all(item in vocab for item in lowered)
    if kind == "items_equal":
        return [i.lower() for i in items] == [i.lower() for i in constraint["items"]]
    if kind == "transform":
        earlier = parse_items(previous or "", constraint["prev_sep"])
        return bool(earlier) and items == ORDER_OPS[constraint["op"]](earlier)
    raise ValueError(f"unknown dialogue constraint type {kind!r}")


# ---------------------------------------------------------------- scoring


def score(items: list[TestItem], answers: list[list[str]], workers: int) -> Scored:
    """Constraints met per turn (an empty answer meets none); ``workers`` is unused."""
    rows: Rows = []
    met_total = count_total = 0
    for item, turns in zip(items, answers, strict=True):
        met = []
        for turn, rules in enumerate(item.check["constraints"]):
            previous = turns[turn - 1] if turn else None
            answer = turns[turn]
            met += [bool(answer.strip()) and check_constraint(c, answer, previous) for c in rules]
        met_total += sum(met)
        count_total += len(met)
        rows.append({"id": item.id, "score": mean(met), "met": met})
    metrics = {
        "constraint_accuracy": met_total / count_total if count_total else 0.0,
        "all_satisfied": mean([float(all(r["met"])) for r in rows]),
    }
    return metrics, rows
