"""answer: questions about one package record, grounded in a context built from its real fields.

Each record's context is a passage made from the Packages stanza and the English description,
in one of several shapes: prose or "Field: value" style, the field sentences in a per-package
order and wording, some fields left out, and none, the first or every paragraph of the long
description (up to MAX_CONTEXT_WORDS words). Questions ask for a field; when the context does
not state it (the record lacks it, its sentence was left out on purpose, or the Packages file
never carries it, like the licence) the answer is "" with answerable false, so a model must
learn to say "not in the context" instead of guessing.

Every field has TRAINED phrasings (train, valid and test records) and UNSEEN phrasings that no
training record uses and that share no run of four words with a trained one: test packages
get one extra record per question, the same context and answer asked with an unseen
phrasing (`phrasing: "unseen"`), to measure how well a model generalises to everyday
wordings it never saw. Choices are a stable hash of the package name,
so a build is reproducible without a random generator.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from model_export.data.catalog import Key
from model_export.data.clean import normalise
from model_export.data.deb822 import Description
from model_export.data.split import split_of

MAX_CONTEXT_WORDS = 280  # description sentences are added only while the context stays under
KEEP_PERCENT = 70  # chance that a present optional field's sentence is in the context
ANSWERABLE_PER_PACKAGE = 4  # answerable questions per package at most (hash order of fields)
UNANSWERABLE_PERCENT = 85  # chance that a package also gets one unanswerable question
RECORD_STYLE_PERCENT = 25  # contexts written as "Field: value." instead of prose
DESCRIPTION_SHAPES = (("none", 15), ("first", 50), ("all", 35))  # paragraphs kept, percent

_LANGUAGES = {  # debtags implemented-in:: value -> how the context names it
    "c": "C",
    "c++": "C++",
    "python": "Python",
    "perl": "Perl",
    "java": "Java",
    "lisp": "Lisp",
    "shell": "shell script",
    "ocaml": "OCaml",
    "r": "R",
    "ruby": "Ruby",
    "objc": "Objective-C",
    "php": "PHP",
    "haskell": "Haskell",
    "tcl": "Tcl",
    "ecmascript": "JavaScript",
    "c-sharp": "C#",
    "scheme": "Scheme",
    "lua": "Lua",
    "fortran": "Fortran",
    "pascal": "Pascal",
    "vala": "Vala",
    "ada": "Ada",
}


@dataclass(frozen=True)
class Field:
    """One thing a question can ask about a package."""

    trained: tuple[str, ...]  # question templates used in every split ({p}: package name)
    unseen: tuple[str, ...]  # question templates used only by test packages' extra records
    prose: tuple[str, ...]  # context sentences stating the value ({p}, {v}); () = never stated
    record: str = ""  # "Field: value" form of the context sentence
    # a context holding this may state the value in the description: no unanswerable question
    doubt: str = ""


FIELDS: dict[str, Field] = {
    "maintainer": Field(
        trained=(
            "Who maintains {p}?",
            "Who is the maintainer of {p}?",
            "Who looks after the {p} package?",
            "Which person or team maintains {p}?",
            "Who takes care of {p} in Debian?",
            "Who is {p}'s maintainer?",
            "maintainer of {p}?",
            "Tell me who maintains {p}.",
            "Whom should I contact about the {p} package?",
            "Who packages {p} for Debian?",
            "Who is behind the Debian package {p}?",
            "Who is the Debian contact for {p}?",
            "Which team maintains {p}?",
            "Name the maintainer of {p}.",
            "Who does the packaging work for {p}?",
            "Who is listed as maintainer for {p}?",
        ),
        unseen=(
            "Who is responsible for {p}?",
            "Who keeps {p} up to date?",
            "Which team or person is in charge of {p}?",
            "Who should I ask about {p}?",
        ),
        prose=(
            "It is maintained by {v}.",
            "The maintainer is {v}.",
            "{v} maintains the package.",
            "Its Debian maintainer is {v}.",
        ),
        record="Maintainer: {v}.",
        doubt=r"maintain|packag(ed|er) by",
    ),
    "homepage": Field(
        trained=(
            "What is the homepage of {p}?",
            "Where is the website of {p}?",
            "What is the URL of {p}'s website?",
            "Where can I find the project page of {p}?",
            "Give me the web address of {p}.",
            "Which website belongs to {p}?",
            "upstream homepage of {p}?",
            "What is the upstream URL for {p}?",
            "Where does {p} live on the web?",
            "What is the web site of {p}?",
            "Which web page describes {p}?",
            "What URL does {p} have?",
            "Where can I find {p} on the internet?",
            "Which site is the home of {p}?",
            "Give me a link for {p}.",
            "Where is the documentation of {p} on the web?",
        ),
        unseen=(
            "Where can I read more about {p}?",
            "Is there a site for {p}?",
            "Where can I learn more about {p} online?",
            "What's the link to {p}'s page?",
        ),
        prose=(
            "Its homepage is {v}.",
            "The project's website is {v}.",
            "More information is available at {v}.",
            "Upstream lives at {v}.",
        ),
        record="Homepage: {v}.",
        doubt=r"://|www\.|\.(org|com|net|io)\b",
    ),
    "section": Field(
        trained=(
            "Which section is {p} in?",
            "In which archive section is {p}?",
            "What section does {p} belong to?",
            "Under which Debian section is {p} filed?",
            "What is the section of {p}?",
            "Which category is {p} listed under?",
            "{p} is in which section?",
            "Which archive section contains {p}?",
            "What Debian section lists {p}?",
            "Which section of the archive has {p}?",
            "In what section can I find {p}?",
            "What group of packages is {p} in?",
            "Which topic is {p} filed under?",
        ),
        unseen=(
            "Which part of the Debian archive holds {p}?",
            "Where in the archive is {p} sorted?",
            "What area of Debian is {p} classified in?",
        ),
        prose=(
            "It is in the {v} section.",
            "It belongs to the {v} section of the archive.",
            "The package is filed under {v}.",
        ),
        record="Section: {v}.",
        doubt=r"section|categor",
    ),
    "summary": Field(
        trained=(
            "What is {p}?",
            "What does the package {p} provide?",
            "Describe {p} in one line.",
            "What is {p} for?",
            "Give me a short description of {p}.",
            "What does {p} do?",
            "Summarize {p}.",
            "What's the one-line summary of {p}?",
            "Tell me about {p}.",
            "Explain the package {p}.",
            "What kind of software is {p}?",
            "Briefly, what does {p} do?",
            "What is {p} used for?",
            "What does {p} offer?",
            "Give a one-sentence summary of {p}.",
            "What is {p} about?",
        ),
        unseen=(
            "Can you tell me what {p} is?",
            "In a few words, what is {p}?",
            "What is the purpose of {p}?",
        ),
        prose=("Its summary is: {v}", "In short: {v}", "{p} is described as: {v}"),
        record="Description: {v}",
    ),
    "version": Field(
        trained=(
            "Which version of {p} is this?",
            "What is the version of {p}?",
            "What version is {p} at?",
            "Tell me the version number of {p}.",
            "Which {p} version does the record describe?",
            "What is the current version of {p}?",
            "Which version of {p} does Debian ship?",
            "What is {p}'s version string?",
            "Give me the version of {p}.",
            "Which {p} version is in the archive?",
        ),
        unseen=(
            "What release of {p} is packaged?",
            "Which version number does {p} have?",
        ),
        prose=("The packaged version is {v}.", "This record describes version {v}."),
        record="Version: {v}.",
        doubt=r"\bversions?\b|\brelease\b|\d\.\d",
    ),
    "source": Field(
        trained=(
            "Which source package builds {p}?",
            "What is the source package of {p}?",
            "From which source package does {p} come?",
            "{p} is built from which source package?",
            "What is the name of {p}'s source package?",
            "Which Debian source package does {p} belong to?",
            "Which source builds the {p} binary?",
        ),
        unseen=(
            "What source is {p} made from?",
            "Which source package produces {p}?",
        ),
        prose=("It is built from the {v} source package.", "Its source package is {v}."),
        record="Source: {v}.",
        doubt=r"source",
    ),
    "language": Field(
        trained=(
            "What is {p} implemented in?",
            "Which programming language is {p} written in?",
            "What language is {p} written in?",
            "In which language is {p} programmed?",
            "Which language is {p} written in?",
            "What programming language does {p} use?",
            "In which programming language is {p} implemented?",
            "What is the implementation language of {p}?",
            "Which language was used to write {p}?",
        ),
        unseen=(
            "What was {p} coded in?",
            "What is {p}'s programming language?",
        ),
        prose=("It is written in {v}.", "It is implemented in {v}."),
        record="Implemented in: {v}.",
        doubt=r"written in|implemented in|programm|\b("
        + "|".join(re.escape(n) for n in _LANGUAGES.values() if len(n) > 1)
        + r")\b|\bC\b|\bR\b",
    ),
    "size": Field(
        trained=(
            "How much disk space does {p} need?",
            "What is the installed size of {p}?",
            "How big is {p} once installed?",
            "What is the disk footprint of {p}?",
            "How many kilobytes does {p} occupy?",
        ),
        unseen=("How large is {p} on disk?", "How much room does {p} take up?"),
        prose=("It takes {v} of disk space once installed.", "Installed, it needs {v}."),
        record="Installed size: {v}.",
        doubt=r"\b[kMG]i?B\b|disk|space|size",
    ),
    "license": Field(  # never in a Packages stanza: always unanswerable
        trained=(
            "What license does {p} use?",
            "Under which license is {p} distributed?",
            "What is the license of {p}?",
            "Which licence covers {p}?",
            "What licence applies to {p}?",
            "Which license is {p} released under?",
            "Under what license can I use {p}?",
            "What is {p}'s license?",
        ),
        unseen=("How is {p} licensed?", "What are the licensing terms of {p}?"),
        prose=(),
        doubt=r"licen[cs]|GPL|BSD|\bMIT\b|Apache|public domain|copyright|copyleft|free software",
    ),
}
OPTIONAL = ("maintainer", "homepage", "section", "version", "source", "language", "size")

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_EMAIL = re.compile(r"<[^>]*>")
_LANGUAGE_TAG = re.compile(r"implemented-in::([\w+#-]+)")


def _hash(package: str, salt: str) -> int:
    """A stable per-package number, so choices are reproducible without a random generator."""
    return int(hashlib.sha256(f"{salt}:{package}".encode()).hexdigest()[:8], 16)


def _pick(package: str, salt: str, options: tuple[str, ...]) -> str:
    return options[_hash(package, salt) % len(options)]


def _chance(package: str, salt: str, percent: int) -> bool:
    return _hash(package, salt) % 100 < percent


def maintainer_name(value: str) -> str:
    """ "Jane Doe <jane@example.org>" -> "Jane Doe" (the e-mail is noise for questions)."""
    return normalise(_EMAIL.sub("", value)).strip(' ,"')


def _sentence(text: str) -> str:
    """End text with a full stop unless it already ends with punctuation."""
    return text if text[-1:] in ".!?" else text + "."


def _languages(tags: str) -> str:
    """debtags implemented-in:: values in words: "C", "C++ and Python", "" when none known."""
    names = [_LANGUAGES[t] for t in _LANGUAGE_TAG.findall(tags) if t in _LANGUAGES]
    names = list(dict.fromkeys(names))
    if len(names) > 1:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return names[0] if names else ""


@dataclass(frozen=True)
class Facts:
    """The cleaned field values of one package that questions can ask about ("" = absent)."""

    package: str
    maintainer: str
    homepage: str
    section: str
    summary: str
    version: str
    source: str  # the source package's name, only when it differs from the package's
    language: str  # from the debtags implemented-in:: values
    size: str  # installed size, "3521 kB"
    paragraphs: tuple[str, ...]  # the long description

    def value(self, field: str) -> str:
        return "" if field == "license" else str(getattr(self, field))


def facts_of(package: str, stanza: dict[str, str], desc: Description | None) -> Facts:
    """Collect one record's values; missing fields become ""."""
    summary = desc.short if desc else stanza.get("Description", "").split("\n")[0]
    source = stanza.get("Source", "").split(" ")[0]
    size = stanza.get("Installed-Size", "").strip()
    return Facts(
        package=package,
        maintainer=maintainer_name(stanza.get("Maintainer", "")),
        homepage=normalise(stanza.get("Homepage", "")),
        section=normalise(stanza.get("Section", "")),
        summary=normalise(summary),
        version=normalise(stanza.get("Version", "")),
        source="" if source == package else normalise(source),
        language=_languages(stanza.get("Tag", "")),
        size=f"{size} kB" if size.isdigit() else "",
        paragraphs=tuple(normalise(p) for p in desc.paragraphs) if desc else (),
    )


def kept_fields(facts: Facts) -> tuple[str, ...]:
    """The optional fields this record's context states, in the context's order."""
    p = facts.package
    kept = [f for f in OPTIONAL if facts.value(f) and _chance(p, f"keep-{f}", KEEP_PERCENT)]
    return tuple(sorted(kept, key=lambda f: _hash(p, f"order-{f}")))


def _description(facts: Facts, budget: int) -> list[str]:
    """Sentences of the long description in this record's shape, within `budget` words."""
    p = facts.package
    roll, shape = _hash(p, "shape") % 100, DESCRIPTION_SHAPES[-1][0]
    for name, percent in DESCRIPTION_SHAPES:
        if roll < percent:
            shape = name
            break
        roll -= percent
    paragraphs = {"none": (), "first": facts.paragraphs[:1], "all": facts.paragraphs}[shape]
    out: list[str] = []
    for sentence in (s for para in paragraphs for s in _SENTENCE.split(para)):
        n = len(sentence.split())
        if not sentence or n > budget:
            break
        out.append(sentence)
        budget -= n
    return out


def build_context(facts: Facts, kept: tuple[str, ...]) -> str:
    """One passage: a sentence naming the package, a sentence per kept field, the summary,
    and the description, in this record's style and order."""
    p = facts.package
    record_style = _chance(p, "style", RECORD_STYLE_PERCENT)

    def state(field: str) -> str:
        spec, value = FIELDS[field], facts.value(field)
        if field == "summary":
            value = _sentence(value)
        template = spec.record if record_style else _pick(p, f"say-{field}", spec.prose)
        return template.format(p=p, v=value)

    head = f"Package: {p}." if record_style else f"{p} is a Debian package."
    fields = [state(f) for f in kept]
    if not record_style and "section" in kept and _chance(p, "merge-section", 50):
        head = f"{p} is a Debian package in the {facts.section} section."
        fields.remove(state("section"))
    summary_first = _chance(p, "summary-first", 50)
    parts = [head, state("summary"), *fields] if summary_first else [head, *fields]
    if not summary_first:
        parts.append(state("summary"))
    words = sum(len(s.split()) for s in parts)
    description = _description(facts, MAX_CONTEXT_WORDS - words)
    if description and _chance(p, "description-first", 30):
        return " ".join([parts[0], *description, *parts[1:]])
    return " ".join([*parts, *description])


def _doubtful(field: str, facts: Facts, context: str) -> bool:
    """True when "not in the context" would be a doubtful verdict for this question."""
    value = facts.value(field)
    if value and value.lower() in context.lower():
        return True
    doubt = FIELDS[field].doubt
    return bool(doubt) and re.search(doubt, context, flags=re.IGNORECASE) is not None


def in_test_split(package: str) -> bool:
    return split_of(package) == "test"


def questions_for(facts: Facts, *, unseen: Callable[[str], bool] = in_test_split) -> Iterator[dict]:
    """Up to ANSWERABLE_PER_PACKAGE answerable questions and maybe one unanswerable one, each
    with a trained phrasing; a package `unseen` accepts (by default, a test package) also
    gets each with an unseen phrasing."""
    p = facts.package
    kept = kept_fields(facts)
    context = build_context(facts, kept)
    by_hash = sorted(FIELDS, key=lambda f: _hash(p, f"ask-{f}"))
    answerable = [f for f in by_hash if f in (*kept, "summary") and facts.value(f) in context]
    unanswerable = [
        f for f in by_hash if f not in kept and f != "summary" and not _doubtful(f, facts, context)
    ]
    asked = [(f, True) for f in answerable[:ANSWERABLE_PER_PACKAGE]]
    if unanswerable and _chance(p, "unanswerable", UNANSWERABLE_PERCENT):
        asked.append((unanswerable[0], False))
    phrasings = ("trained", "unseen") if unseen(p) else ("trained",)
    for field, in_context in asked:
        for phrasing in phrasings:
            templates = getattr(FIELDS[field], phrasing)
            question = _pick(p, f"{phrasing}-{field}", templates).format(p=p)
            answer = facts.value(field) if in_context else ""
            yield _record(p, field, phrasing, question, context, answer)


def _record(
    package: str, field: str, phrasing: str, question: str, context: str, answer: str
) -> dict:
    return {
        "id": package,
        "field": field,
        "phrasing": phrasing,
        "question": question,
        "context": context,
        "answer": answer,
        "answerable": bool(answer),
    }


def build_answer(
    packages: dict[str, dict[str, str]],
    english: dict[Key, Description],
    *,
    keep: Callable[[str], bool] = lambda _: True,
    unseen: Callable[[str], bool] = in_test_split,
) -> list[dict]:
    """Question records for every package in the Packages file (that `keep` accepts), in
    package order; `unseen`: which packages also get the unseen-phrasing twins."""
    records: list[dict] = []
    for package, stanza in packages.items():
        if not keep(package):
            continue
        desc = english.get((package, stanza.get("Description-md5", "")))
        facts = facts_of(package, stanza, desc)
        if facts.summary:
            records.extend(questions_for(facts, unseen=unseen))
    return records
