"""`init`: what the run does not say comes from the checkpoint; what it says is kept (None
means "not given", never a default that looks given)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from imagion.errors import ImagionError
from imagion.models.checkpoints import read_card, rewrite_card
from imagion.training.init import resolve_init
from imagion.training.options import TrainOptions


@pytest.fixture
def init_with_dropout(trained, tmp_path):
    _, best = trained
    path = tmp_path / "init.pt"
    shutil.copy(best, path)
    card = read_card(path)
    rewrite_card(path, replace(card, config={**card.config, "dropout": 0.5}))
    return path


def test_not_given_comes_from_the_checkpoint(init_with_dropout):
    opts, _ = resolve_init(TrainOptions(init=str(init_with_dropout)))
    assert opts.dropout == 0.5 and opts.hidden == 0 and opts.finetune is False


def test_an_explicit_value_is_kept_even_when_it_is_the_default(init_with_dropout):
    opts, _ = resolve_init(TrainOptions(init=str(init_with_dropout), dropout=0.2))
    assert opts.dropout == 0.2  # was replaced by the checkpoint's 0.5


def test_without_init_the_defaults(tmp_path):
    opts, init = resolve_init(TrainOptions())
    assert init is None and (opts.dropout, opts.hidden, opts.finetune) == (0.2, 0, False)


def test_a_head_that_does_not_fit_is_said_not_replaced(init_with_dropout):
    with pytest.raises(ImagionError, match="hidden"):
        resolve_init(TrainOptions(init=str(init_with_dropout), hidden=64))


def test_finetune_can_be_switched_off_on_the_command_line(runner):
    from imagion.cli import app

    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "--no-finetune" in res.stdout
