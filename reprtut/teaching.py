"""The book as a course: its learning objectives, exercises and sessions, read from the pages.

The Teaching part of the book calls these functions when it is built, so its syllabus and its
index of objectives and exercises are the chapters' own and cannot drift from them. A page's
objectives are the items of its ``Learning objectives`` admonition; its exercises are its
``{exercise}`` directives, each naming the objective it trains with a MyST comment line
``% objective: N`` (N counts the page's objectives from 1); an exercise is auto-checked when
a code cell after it, outside its solution, calls ``rt.check.<name>(...)`` (:mod:`reprtut.check`).
The times of the sessions come from the chapter runs recorded under ``benchmarks/`` by
``tools/run_chapters.py --json`` (read with :mod:`reprtut.bench.report`); none are typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .bench import report

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = re.compile(r"^:::\{admonition\} Learning objectives\n(.*?)^:::", re.S | re.M)
EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}[ \t]*(?P<title>.*)$")
CHECK_CALL = re.compile(r"\brt\.check\.(\w+)\(")
TRAINS = re.compile(r"^%\s*objective:\s*(\d+)\s*$", re.M)


@dataclass(frozen=True)
class Exercise:
    page: str             # the page's stem, e.g. "01_adversarial_training"
    label: str            # the exercise's :label:
    title: str            # its title, or the start of its text where it has none
    objective: int | None  # 1-based index into the page's objectives (% objective: N)
    checks: tuple[str, ...]  # the rt.check functions its student cells call


@dataclass(frozen=True)
class Page:
    stem: str
    title: str
    objectives: tuple[str, ...]
    exercises: tuple[Exercise, ...]


@dataclass(frozen=True)
class Session:
    title: str
    pages: tuple[str, ...]          # page stems, in the order they are taught
    prerequisites: tuple[str, ...]  # what a student needs first (sessions or knowledge)
    lecture: str                    # what the 45-minute lecture covers
    lab: str                        # what the 45-minute lab does


# Eight sessions of 90 minutes: a lecture on the page's ideas, then a lab in which the students
# run the page in the quick profile and work the exercises.
SESSIONS = (
    Session("Attacks and adversarial training", ("01_adversarial_training",),
            ("PyTorch and training a classifier", "gradients and norms"),
            "threat models, FGSM and PGD, the min–max objective", "run the page; targeted PGD"),
    Session("Evaluating robustness honestly", ("02_evaluating_robustness",), ("session 1",),
            "the attack suite, minimal perturbations, AUC, gradient masking",
            "robustness curves and their area; the masking checklist"),
    Session("Perceptual regularization", ("03_perceptual_regularization",), ("session 1",),
            "a decoder on the latent, the balance of the two losses",
            "the λ sweep; the balanced λ"),
    Session("What perceptions show: transfer and attacks",
            ("03a_perceptual_transfer", "03b_perceptual_attacks"), ("session 3",),
            "what a representation keeps; reading an attack through a decoder",
            "transfer matrices; the judge"),
    Session("Robust representations", ("04_robust_representations",), ("sessions 1 and 2",),
            "inversion, feature visualisation and interpolation as PGD on R",
            "inversions of standard and robust models; a class's top features"),
    Session("Gradients, manifolds and interpretability", ("05_gradient_interpretability",),
            ("sessions 1 and 2",), "boundary tilting, the manifold projection, ROAR and KAR",
            "attribution maps and their evaluation"),
    Session("Adversarial feature desensitization", ("06_feature_desensitization", "06a_afd_cifar"),
            ("sessions 1 and 2",), "the embedding–discriminator game, sensitivity of R",
            "AFD against AT on MNIST; reading the CIFAR-10 results"),
    Session("Low-rank representations and the cost of robustness",
            ("07_low_rank_representations", "performance"), ("sessions 1 and 2",),
            "the virtual low-rank layer, variance ratios; what a training step costs",
            "VR_k of LR models; a budget of PGD steps"),
)


def _objectives(text: str) -> tuple[str, ...]:
    """The items of the page's Learning objectives list, each joined onto one line."""
    match = OBJECTIVES.search(text)
    if match is None:
        return ()
    items: list[str] = []
    for line in match[1].splitlines():
        if line.startswith(("- ", "* ")):
            items.append(line[2:].strip())
        elif items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
    return tuple(items)


def _exercise(page: str, lines: list[str]) -> Exercise:
    """One exercise from the lines of its directive (the opening fence first)."""
    title = EXERCISE.match(lines[0])["title"].strip()
    label = next((ln.split(":label:", 1)[1].strip() for ln in lines if ln.startswith(":label:")), "")
    body = "\n".join(ln for ln in lines[1:-1] if not ln.startswith(":"))
    trains = TRAINS.search(body)
    if not title:   # the first sentence of the text, as plain words (no roles, code or maths)
        prose = " ".join(TRAINS.sub("", body).split())
        prose = re.sub(r"\{[\w:-]+\}`([^`]*)`", r"\1", prose).replace("`", "").replace("$", "")
        title = prose.split(". ")[0][:70] + ("…" if len(prose.split(". ")[0]) > 70 else "")
    return Exercise(page, label, title, int(trains[1]) if trains else None, ())


def read_page(md: str | Path) -> Page:
    """A page's title, objectives and exercises (with the checks its student cells call)."""
    import jupytext

    from .solutions import strip

    md = Path(md)
    text = md.read_text()
    cells, _ = strip(jupytext.read(md))
    exercises: list[Exercise] = []
    checks: dict[int, list[str]] = {}
    for cell in cells.cells:
        if cell.cell_type == "code":
            if exercises:
                checks.setdefault(len(exercises) - 1, []).extend(CHECK_CALL.findall(cell.source))
            continue
        lines = cell.source.split("\n")
        for i, line in enumerate(lines):
            match = EXERCISE.match(line)
            if match:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == match["fence"])
                exercises.append(_exercise(md.stem, lines[i:end + 1]))
    exercises = [Exercise(e.page, e.label, e.title, e.objective, tuple(dict.fromkeys(checks.get(i, []))))
                 for i, e in enumerate(exercises)]
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), md.stem)
    return Page(md.stem, title, _objectives(text), tuple(exercises))


def book_pages(root: str | Path = ROOT) -> list[Page]:
    """Every notebook page of ``_toc.yml`` outside the Teaching part, in the book's order."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        if part.get("caption") == "Teaching":
            continue
        for chapter in part["chapters"]:
            files += [chapter["file"], *(s["file"] for s in chapter.get("sections", []))]
    paths = [Path(root) / f"{f}.md" for f in files]
    return [read_page(p) for p in paths if "jupytext" in p.read_text()[:400]]


def chapter_times(where: str | Path | None = None) -> dict[str, dict]:
    """The latest recorded chapter run of each kind: ``{"cpu": record, "gpu": record}`` where
    one exists. "cpu" is a quick-profile run on a CPU; "gpu" a run on any accelerator, in the
    profile it names. Each record maps ``"seconds"`` to {page stem: wall time in s} and
    ``"label"`` to the machine, date and commit. ``where`` defaults to the nearest benchmarks/."""
    results = [r for r in report.load(where if where is not None else report.folder(ROOT))
               if r["benchmark"] == "chapters"]
    out = {}
    for kind, keep in (("cpu", lambda r: r["device"] == "cpu" and r["profile"] == "quick"),
                       ("gpu", lambda r: r["device"] != "cpu")):
        runs = sorted((r for r in results if keep(r)), key=lambda r: r["date"])
        if runs:
            r = runs[-1]
            out[kind] = {"label": f"{report.label(r)}, {r['profile']} profile",
                         "seconds": {c["chapter"]: c["seconds"] for c in r["chapters"] if c["passed"]}}
    return out


def estimated_times(profile: str | None = None, device: str = "T4") -> dict:
    """The cost model's cold estimate of every page on a GPU, as a record of
    :func:`chapter_times` (``"label"`` says it is an estimate; pages that train nothing count
    as 0 s): what the syllabus shows for a GPU runtime until a GPU run is recorded. The
    profile defaults to the one a CUDA device gets (:data:`reprtut.profiles.GPU_DEFAULT`)."""
    from . import profiles
    from .bench import costs, plan

    profile = profiles.GPU_DEFAULT if profile is None else profile
    if device not in costs.GPUS:
        raise ValueError(f"device must be one of {', '.join(costs.GPUS)}, got {device!r}")
    seconds = {r["page"]: 60.0 * r[f"min_{device}"] for r in plan.table(profile)}
    seconds.update({Path(name).name: 0.0 for name in plan.PAGES_WITHOUT_WORK})
    return {"label": f"estimated by the cost model for a {device}, {profile} profile, empty model cache",
            "seconds": seconds, "estimated": True}


def _minutes(pages: tuple[str, ...], record: dict | None) -> str:
    if record is None:
        return "no recorded times"
    seconds = [record["seconds"].get(p) for p in pages]
    if any(s is None for s in seconds):
        return "not recorded for " + ", ".join(p for p, s in zip(pages, seconds) if s is None)
    return f"{sum(seconds) / 60:.1f} min"


def syllabus(pages: list[Page], times: dict[str, dict]) -> list[dict]:
    """One dict per session of :data:`SESSIONS`: its pages' titles, objectives, exercises
    (label, objective, checks) and run times ("no recorded times" where none are)."""
    by_stem = {p.stem: p for p in pages}
    missing = [s for session in SESSIONS for s in session.pages if s not in by_stem]
    if missing:
        raise ValueError(f"sessions name pages the book does not have: {missing}")
    rows = []
    for n, session in enumerate(SESSIONS, 1):
        ps = [by_stem[s] for s in session.pages]
        rows.append({"n": n, "session": session, "pages": ps,
                     "objectives": [o for p in ps for o in p.objectives],
                     "exercises": [e for p in ps for e in p.exercises],
                     "cpu": _minutes(session.pages, times.get("cpu")),
                     "gpu": _minutes(session.pages, times.get("gpu"))})
    return rows


def _plain(title: str) -> str:
    """A title that can stand inside a ``{ref}`` role."""
    return title.replace("<", "‹").replace(">", "›").replace("`", "")


def syllabus_markdown(pages: list[Page], times: dict[str, dict]) -> str:
    """The syllabus as Markdown (one section per session), for ``IPython.display.Markdown``."""
    out = []
    for row in syllabus(pages, times):
        s = row["session"]
        links = ", ".join(f"{{doc}}`{p.title} </book/{p.stem}>`" for p in row["pages"])
        out += [f"### Session {row['n']}: {s.title}", "",
                f"- **Pages:** {links}",
                f"- **Prerequisites:** {'; '.join(s.prerequisites)}",
                f"- **Lecture (45 min):** {s.lecture}. **Lab (45 min):** {s.lab}.",
                f"- **Run time of the pages:** CPU, quick profile: {row['cpu']}; "
                f"GPU{' (estimated)' if times.get('gpu', {}).get('estimated') else ''}: {row['gpu']}",
                "- **Learning objectives:**", *(f"  - {o}" for o in row["objectives"]),
                "- **Exercises to assign:** " + "; ".join(
                    f"{{ref}}`{_plain(e.title)} <{e.label}>`" + (" (auto-checked)" if e.checks else "")
                    for e in row["exercises"]), ""]
    return "\n".join(out)


def index_rows(pages: list[Page]) -> list[tuple[str, str, str, str]]:
    """One row per exercise: page, exercise (a reference), the objective it trains, and its
    auto-check (the rt.check functions, or "no")."""
    rows = []
    for p in pages:
        for e in p.exercises:
            objective = (p.objectives[e.objective - 1] if e.objective and e.objective <= len(p.objectives)
                         else "(the page's objectives)")
            checks = ", ".join(f"`rt.check.{c}`" for c in e.checks) or "no"
            rows.append((p.title, f"{{ref}}`{_plain(e.title)} <{e.label}>`", objective, checks))
    return rows


def objectives_markdown(pages: list[Page]) -> str:
    """Every page's learning objectives, numbered as the exercises' ``% objective: N`` count."""
    out = []
    for p in pages:
        out += [f"**{{doc}}`{p.title} </book/{p.stem}>`**", ""]
        out += [f"{i}. {o}" for i, o in enumerate(p.objectives, 1)] + [""]
    return "\n".join(out)
