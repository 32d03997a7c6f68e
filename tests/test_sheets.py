"""Contact sheets as drawn (`rank --sheet`, `pick --sheet`): no caption over a photo, long names
shortened with "…", never cut silently."""

from __future__ import annotations

from pathlib import Path

from imagion.inference.groups import Group
from imagion.inference.pick import Pick
from imagion.inference.rank import Ranked
from imagion.inference.sheet import _pick_figure, _sheet_figure, fitted_name
from tests.helpers import write_image

LONG = "natgeo_2022-11-30_17-45-12_UTC_a_very_long_holiday_name_1.jpg"


def _photos(tmp_path: Path, n: int) -> list[Ranked]:
    out = []
    for k in range(n):
        path = write_image(tmp_path / f"{k}_{LONG}", 0.2 + 0.05 * k, size=48, seed=k)
        out.append(Ranked(path, 6.0 - k * 0.1, 1.0 - k, 2.0, 9.0, p_beats_next=0.51))
    return out


def _overlaps(fig) -> list[tuple[str, int]]:
    """(text, image axes index) for every text drawn over a photo."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    photos = [ax.get_window_extent(r) for ax in fig.axes if ax.get_images()]
    texts = [t for ax in fig.axes for t in (ax.title, *ax.texts) if t.get_text()]
    return [
        (t.get_text(), k)
        for t in texts
        for k, box in enumerate(photos)
        if t.get_window_extent(r).overlaps(box)
    ]


def test_pick_sheet_captions_stay_off_the_photos(tmp_path):
    shots = _photos(tmp_path, 12)
    picks = []
    for k in range(3):
        g = Group(k + 1, shots[4 * k : 4 * k + 4], p_beats_next=0.51, even=4)
        picks.append(Pick(k + 1, g))
    fig = _pick_figure(picks, "imagion pick · model default-model.pt")
    assert not _overlaps(fig)
    drawn = "\n".join(t.get_text() for ax in fig.axes for t in (ax.title, *ax.texts))
    assert "toss-up" in drawn and "…" in drawn and LONG not in drawn


def test_rank_sheet_names_are_shortened_with_an_ellipsis(tmp_path):
    fig = _sheet_figure(_photos(tmp_path, 7), "imagion rank · model default-model.pt")
    assert not _overlaps(fig)
    titles = [ax.title.get_text() for ax in fig.axes if ax.get_images()]
    names = [t.splitlines()[-1] for t in titles]
    assert all(len(n) <= 32 and "…" in n and n.endswith("_1.jpg") for n in names), names
    assert len(set(names)) == len(names)  # 0_…, 1_… stay apart
    assert fitted_name("short.jpg") == "short.jpg"
