"""The exercises' checks (reprtut.check): each passes on the chapter's own solution and fails on
plausible wrong answers.

The solution is read from the chapter, not copied here, so the test follows it: the statements
of the exercise's solution cells run, in order, until every name that the chapter's check cell
uses is defined, in a namespace of small stand-ins for the page's models and data (untrained
networks of a few hundred weights); then the check cell itself runs there.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import jupytext
import pytest
import torch
from torch import nn

import reprtut as rt
from reprtut import teaching

BOOK = Path(__file__).resolve().parents[1] / "book"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cells(page: str, label: str):
    """The code of the exercise's gated solution and the check cell after it."""
    cells = jupytext.read(BOOK / f"{page}.md").cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and f"{{solution-start}} {label}" in c.source)
    end = next(i for i in range(start + 1, len(cells)) if "{solution-end}" in cells[i].source)
    solution = [c.source for c in cells[start:end] if c.cell_type == "code"]
    check = next(c.source for c in cells[end:] if c.cell_type == "code" and "rt.check." in c.source)
    return solution, check


def _run_solution(sources: list[str], check: str, ns: dict) -> dict:
    """Run the solution's statements until the check cell's names are all defined."""
    wanted = {n.id for n in ast.walk(ast.parse(check)) if isinstance(n, ast.Name)}
    body = [stmt for src in sources for stmt in ast.parse(src).body]
    for stmt in body:
        if wanted <= ns.keys():
            break
        exec(compile(ast.Module([stmt], []), "<solution>", "exec"), ns)
    return ns


def _solve_and_check(page, label, ns):
    solution, check = _cells(page, label)
    ns = _run_solution(solution, check, {"rt": rt, "torch": torch, **ns})
    verdicts = eval(compile(check, "<check>", "eval"), ns)
    return ns, verdicts if isinstance(verdicts, list) else [verdicts]


def _classifier(shape=(1, 6, 6), d=8, classes=10, seed=0):
    torch.manual_seed(seed)
    c, h, w = shape
    features = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, d), nn.ReLU())
    return rt.models.Classifier(features, nn.Linear(d, classes)).eval()


def _images(n=8, shape=(1, 6, 6), seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=g), torch.randint(0, 10, (n,), generator=g)


def _failed(verdict, words: str):
    assert not verdict, verdict
    assert words in verdict.hint, verdict


def test_targeted_attack():
    x, y = _images()
    f_std, f_rob = _classifier(seed=0), _classifier(seed=1)
    pred = lambda model, images: rt.evaluate.predict(model, images).argmax(1).tolist()
    ns, verdicts = _solve_and_check("01_adversarial_training", "ch1-targeted", dict(
        x=x, y=y, f_std=f_std, f_rob=f_rob, pgd=rt.attacks.pgd, pred=pred))
    assert all(verdicts), verdicts
    three = ns["three"]
    check = rt.check.targeted_attack
    # Forgets the [0, 1] clamp: one signed step of ε from the clean image.
    x_adv = x - 0.3 * torch.sign(rt.representation.saliency(f_std, x, three))
    _failed(check(f_std, x, x_adv, 3, eps=0.3), "[0, 1]")
    # Projects onto too large a ball.
    _failed(check(f_std, x, rt.attacks.pgd(f_std, x, three, eps=0.5, targeted=True), 3, eps=0.3), "ε")
    # Raises the target's loss instead of lowering it (targeted=False).
    _failed(check(f_std, x, rt.attacks.pgd(f_std, x, three, eps=0.3, steps=40), 3, eps=0.3), "target")


def test_equal_auc():
    ns, verdicts = _solve_and_check("02_evaluating_robustness", "ch2-auc", {})
    assert all(verdicts), verdicts
    a, b = ns["curve_a"], ns["curve_b"]
    _failed(rt.check.equal_auc(a, [1, 0.4, 0.4, 0.4]), "AUC")
    _failed(rt.check.equal_auc(a, a), "differ")
    _failed(rt.check.equal_auc(a, [1, 0.4, 0.5, 0.15]), "cannot rise")
    assert rt.check.equal_auc(b, a)


def test_celeba_lambda():
    from reprtut.methods import perceptual as pr

    ns, verdicts = _solve_and_check("03_perceptual_regularization", "ch3-ex-balance", {"pr": pr})
    assert all(verdicts), verdicts
    star = ns["celeba_star"]
    _failed(rt.check.celeba_lambda(star * math.log(10) / math.log(2)), "balanced")   # K = 10, not 2
    info = rt.data.INFO["celeba"]
    unsquared = math.log(2) / sum(info.shape[1] * info.shape[2] * s for s in info.std)
    _failed(rt.check.celeba_lambda(unsquared), "squared")


def test_top_coordinates():
    f = _classifier(shape=(3, 4, 4), d=32)
    ns, verdicts = _solve_and_check("04_robust_representations", "ch4-class",
                                    {"models": {"robust": f}, "classes": CLASSES})
    assert all(verdicts), verdicts
    c, W = CLASSES.index("horse"), f.head.weight.detach()
    for wrong in (W[c].topk(5, largest=False).indices, W[c].abs().topk(5).indices, W[:, c].topk(5).indices):
        assert set(wrong.tolist()) != set(ns["top_i"].tolist())
        _failed(rt.check.top_coordinates(f, c, wrong), "row of W")


def test_gx_unit_box():
    f = _classifier()
    x_test, y_test = _images(n=12)
    ns, verdicts = _solve_and_check("05_gradient_interpretability", "ch5-gx", {
        "models": {"standard": f}, "x_test": x_test, "y_test": y_test, "at": rt.attribution})
    assert all(verdicts), verdicts
    g = rt.attribution.attribute(f, x_test, y_test, "G")
    _failed(rt.check.gx_unit_box(f, x_test, y_test, rt.attribution.attribute(f, x_test, y_test, "GX")), "[-1, 1]")
    _failed(rt.check.gx_unit_box(f, x_test, y_test, g), "multiply")
    _failed(rt.check.gx_unit_box(f, x_test, y_test, x_test * g.abs()), "multiply")


def test_sensitivity():
    ns, verdicts = _solve_and_check("06_feature_desensitization", "afd-ex-sensitivity", {})
    assert all(verdicts), verdicts
    wrong = {
        "squared": lambda E, x, xa: (E(xa) - E(x)).pow(2).sum(1) / E(x).norm(dim=1),
        "by the perturbed norm": lambda E, x, xa: (E(xa) - E(x)).norm(dim=1) / E(xa).norm(dim=1),
        "not normalised": lambda E, x, xa: (E(xa) - E(x)).norm(dim=1),
    }
    for fn in wrong.values():
        _failed(rt.check.sensitivity(fn), "not S_e")
    _failed(rt.check.sensitivity(lambda E, x, xa: (E(xa) - E(x)).norm() / E(x).norm()), "one value per image")


def test_centred_variance_ratio():
    x, _ = _images(n=40)
    models = {"N-LR control": _classifier(seed=2), "1-LR": _classifier(seed=3)}
    ns, verdicts = _solve_and_check("07_low_rank_representations", "ex-lr-center",
                                    {"models": models, "x": x, "lra": rt.low_rank_analysis})
    assert all(verdicts), verdicts
    A = ns["A"]
    _failed(rt.check.centred_variance_ratio(A, rt.low_rank_analysis.variance_ratio(A)), "keeps the mean")
    _failed(rt.check.centred_variance_ratio(A, rt.low_rank_analysis.variance_ratio(A.T, center=True)), "not the centred")


def test_pgd_budget():
    from reprtut.bench import training

    c_f = 1.1e9   # about ResNet-18's forward FLOP per 32x32 image
    ns, verdicts = _solve_and_check("performance", "perf-steps", {"training": training, "c_f": c_f})
    assert all(verdicts), verdicts
    k = ns["k"]
    _failed(rt.check.pgd_budget(k + 1, c_f), "do not fit")
    _failed(rt.check.pgd_budget(k - 1, c_f), "still fits")
    full_peak = int((2 * ns["per_image"] / c_f - 3) // 3)          # the whole peak, not half
    _failed(rt.check.pgd_budget(full_peak, c_f), "do not fit")


def test_every_check_in_the_book_is_tested_here():
    """A check cell added to a chapter needs its test in this file."""
    tested = {"targeted_attack", "equal_auc", "celeba_lambda", "top_coordinates", "gx_unit_box",
              "sensitivity", "centred_variance_ratio", "pgd_budget"}
    used = {c for p in teaching.book_pages() for e in p.exercises for c in e.checks}
    assert used == tested, used ^ tested
    assert set(rt.check.__all__) - {"Verdict"} == tested


def test_a_verdict_shows_pass_or_a_hint_without_the_expected_value():
    good, bad = rt.check.pgd_budget(0, 2e10), rt.check.celeba_lambda(1.0)   # K = 0 fits, K = 1 not
    assert good and repr(good).startswith("✓")
    assert not bad and repr(bad).startswith("✗") and "balanced" in repr(bad)
    info = rt.data.INFO["celeba"]
    expected = math.log(2) / sum(info.shape[1] * info.shape[2] * s ** 2 for s in info.std)
    assert f"{expected:.2g}" not in repr(bad) and f"{expected:.3g}" not in repr(bad)
    assert "could not be used" in rt.check.equal_auc([1, 0.5], "x").hint
