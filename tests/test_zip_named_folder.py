"""A folder named like a zip member's path (`trip.zip!`) is a folder; `x.zip!/member` is read
from the zip only when `x.zip` is a file."""

from __future__ import annotations

import zipfile

from imagion.cli import app
from imagion.images import read_image_bytes, zip_member
from tests.helpers import write_image


def test_a_folder_named_trip_zip_bang_is_a_folder(runner, tmp_path):
    photo = write_image(tmp_path / "trip.zip!" / "a.jpg", 0.4, size=48)
    assert zip_member(photo) is None
    assert read_image_bytes(photo) == photo.read_bytes()
    res = runner.invoke(app, ["rank", str(tmp_path / "trip.zip!"), "--no-suggest", "--json"])
    assert res.exit_code == 0, res.output
    assert "a.jpg" in res.stdout


def test_a_member_of_a_real_zip_is_read_from_it(tmp_path):
    photo = write_image(tmp_path / "a.jpg", 0.4, size=48)
    with zipfile.ZipFile(tmp_path / "trip.zip", "w") as z:
        z.write(photo, "media/a.jpg")
    ref = f"{tmp_path / 'trip.zip'}!/media/a.jpg"
    assert zip_member(ref) == (tmp_path / "trip.zip", "media/a.jpg")
    assert read_image_bytes(ref) == photo.read_bytes()
    gone = f"{tmp_path / 'moved.zip'}!/media/a.jpg"  # still a member: "the zip is not there"
    assert zip_member(gone) == (tmp_path / "moved.zip", "media/a.jpg")
