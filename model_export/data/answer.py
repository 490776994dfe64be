"""answer: questions about one package record, grounded in a context built from its real fields.

Each record's context is a few sentences made from the Packages stanza and the English
description. Some questions ask for a field the context lacks (the record has no homepage, or
that field's sentence was left out on purpose), with answer "" and answerable false, so a
model must learn to say "not in the context" instead of guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from model_export.data.catalog import Key
from model_export.data.clean import normalise
from model_export.data.deb822 import Description

MAX_CONTEXT_WORDS = 120  # the long-description sentences are added only while under this
OMIT_PERCENT = 60  # share of records that leave one present field's sentence out of the context

FIELDS = ("maintainer", "homepage", "section", "summary")  # what the questions ask for
OMITTABLE = ("maintainer", "homepage", "section")  # the summary always stays: it anchors the text

QUESTIONS: dict[str, tuple[str, ...]] = {  # field -> templates, one picked per record by hash
    "maintainer": ("Who maintains {p}?", "Who is the maintainer of {p}?"),
    "homepage": ("What is the homepage of {p}?", "Where is the website of {p}?"),
    "section": ("Which section is {p} in?", "In which archive section is {p}?"),
    "summary": ("What is {p}?", "What does the package {p} provide?"),
}

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_EMAIL = re.compile(r"<[^>]*>")


def _hash(package: str, salt: str) -> int:
    """A stable per-package number, so choices are reproducible without a random generator."""
    return int(hashlib.sha256(f"{salt}:{package}".encode()).hexdigest()[:8], 16)


def maintainer_name(value: str) -> str:
    """ "Jane Doe <jane@example.org>" -> "Jane Doe" (the e-mail is noise for questions)."""
    return normalise(_EMAIL.sub("", value)).strip(' ,"')


def _sentence(text: str) -> str:
    """End text with a full stop unless it already ends with punctuation."""
    return text if text[-1:] in ".!?" else text + "."


@dataclass(frozen=True)
class Facts:
    """The cleaned field values of one package that questions can ask about."""

    package: str
    maintainer: str
    homepage: str
    section: str
    summary: str
    first_paragraph: str


def facts_of(package: str, stanza: dict[str, str], desc: Description | None) -> Facts:
    """Collect one record's values; missing fields become ""."""
    summary = desc.short if desc else stanza.get("Description", "").split("\n")[0]
    return Facts(
        package=package,
        maintainer=maintainer_name(stanza.get("Maintainer", "")),
        homepage=normalise(stanza.get("Homepage", "")),
        section=normalise(stanza.get("Section", "")),
        summary=normalise(summary),
        first_paragraph=normalise(desc.paragraphs[0]) if desc and desc.paragraphs else "",
    )


def _omitted(facts: Facts) -> str | None:
    """Which present field (if any) this record leaves out of its context."""
    present = [f for f in OMITTABLE if getattr(facts, f)]
    if not present or _hash(facts.package, "omit") % 100 >= OMIT_PERCENT:
        return None
    return present[_hash(facts.package, "which") % len(present)]


def build_context(facts: Facts, omit: str | None) -> str:
    """A short natural passage: one sentence per kept field, then the description's opening."""
    p = facts.package
    keep = {f: getattr(facts, f) if f != omit else "" for f in OMITTABLE}
    parts = [
        f"{p} is a Debian package in the {keep['section']} section."
        if keep["section"]
        else f"{p} is a Debian package."
    ]
    if keep["maintainer"]:
        parts.append(f"It is maintained by {keep['maintainer']}.")
    if keep["homepage"]:
        parts.append(f"Its homepage is {keep['homepage']}.")
    parts.append(f"Its summary is: {_sentence(facts.summary)}")
    words = sum(len(s.split()) for s in parts)
    for sentence in _SENTENCE.split(facts.first_paragraph):
        n = len(sentence.split())
        if not sentence or words + n > MAX_CONTEXT_WORDS:
            break
        parts.append(sentence)
        words += n
    return " ".join(parts)


def questions_for(facts: Facts) -> Iterator[dict]:
    """One question per field: answerable when the value is in the context, else unanswerable.

    A question is skipped when its verdict would be doubtful: an omitted value that still
    shows up in the description text, or a homepage question whose context holds some URL.
    """
    omit = _omitted(facts)
    context = build_context(facts, omit)
    for field in FIELDS:
        value = getattr(facts, field)
        templates = QUESTIONS[field]
        question = templates[_hash(facts.package, field) % len(templates)].format(p=facts.package)
        in_context = bool(value) and field != omit
        if in_context and value in context:
            yield _record(facts.package, question, context, value, True)
        elif not in_context:
            if value and value.lower() in context.lower():
                continue
            if field == "homepage" and "://" in context:
                continue
            yield _record(facts.package, question, context, "", False)


def _record(package: str, question: str, context: str, answer: str, answerable: bool) -> dict:
    return {
        "id": package,
        "question": question,
        "context": context,
        "answer": answer,
        "answerable": answerable,
    }


def build_answer(
    packages: dict[str, dict[str, str]], english: dict[Key, Description]
) -> list[dict]:
    """Question records for every package in the Packages file, in package order."""
    records: list[dict] = []
    for package, stanza in packages.items():
        desc = english.get((package, stanza.get("Description-md5", "")))
        facts = facts_of(package, stanza, desc)
        if facts.summary:
            records.extend(questions_for(facts))
    return records
