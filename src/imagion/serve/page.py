"""The upload page: a form for up to `Limits.max_files` pictures and, after scoring, one card per picture, best
first (thumbnail, score and its 80% range, how likely it beats the next, advice). Everything shown is escaped."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from imagion.inference.history import past_shown
from imagion.inference.quality import flag_text
from imagion.inference.rank import Ranked
from imagion.scores import ODDS_RULE, odds_words, range_text, score_meaning, score_text
from imagion.serve.scorer import Grouped, Scored

if TYPE_CHECKING:
    from imagion.inference.pick import PickResult

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>imagion — which picture will get more attention?</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; margin-bottom: .3rem; }} .muted {{ color: #666; font-size: .9rem; }}
.drop {{ display: block; border: 2px dashed #bbb; padding: 1.2rem; border-radius: .6rem; text-align: center; cursor: pointer; }}
.drop.over {{ border-color: #d6336c; background: #fff0f5; }}
.drop input {{ position: absolute; width: 1px; height: 1px; opacity: 0; }}
.previews {{ display: flex; flex-wrap: wrap; gap: .4rem; margin-top: .6rem; }}
.previews img {{ width: 64px; height: 64px; object-fit: cover; border-radius: .3rem; }}
button {{ font-size: 1rem; padding: .4rem 1.2rem; margin-top: .6rem; }}
.busy {{ margin-left: .6rem; color: #444; }}
.spinner {{ display: inline-block; width: .9rem; height: .9rem; border: 2px solid #ccc; border-top-color: #d6336c; border-radius: 50%; animation: spin .8s linear infinite; vertical-align: -.1rem; }}
@keyframes spin {{ to {{ transform: rotate(360deg); }} }}
.card {{ display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #eee; padding: .8rem 0; }}
.card img {{ flex: 0 0 128px; width: 128px; height: 128px; object-fit: cover; border-radius: .4rem; }}
.card .text {{ flex: 1 1 auto; min-width: 0; overflow-wrap: anywhere; }}
.score {{ flex: 0 0 4.5rem; font-size: 1.8rem; font-weight: 700; text-align: center; }}
.range {{ font-size: .8rem; font-weight: 400; color: #555; white-space: nowrap; }}
.bar {{ background: #eee; height: .5rem; width: 100%; max-width: 12rem; border-radius: .25rem; }}
.card b {{ display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.card p {{ margin: .3rem 0 0; }}
@media (max-width: 480px) {{
  body {{ margin: 1rem auto; }}
  .card {{ gap: .6rem; }}
  .card img {{ flex-basis: 84px; width: 84px; height: 84px; }}
  .score {{ flex-basis: 3.6rem; font-size: 1.4rem; }}
  .card {{ padding: .5rem 0; }} .card p {{ font-size: .85rem; }}
}}
.bar span {{ display: block; height: 100%; background: #d6336c; border-radius: .25rem; }}
.error {{ color: #b00; }} .sure {{ font-size: .9rem; color: #444; }}
.past-posts {{ display: flex; gap: .4rem; }} .past-posts figure {{ margin: 0; text-align: center; font-size: .8rem; color: #444; }}
.past-posts img {{ width: 64px; height: 64px; border-radius: 4px; }}
.caveat {{ font-size: .8rem; }} h2 {{ margin: .6rem 0 .3rem; }}
</style></head><body>
<h1>Which of these pictures will get more attention?</h1>
<p class="muted">Up to {max_files} pictures, {max_mb} MB each; scores 0–10: the score its likes would most likely get, 5 is a typical post. Model: {model}.</p>
<form id="upload" method="post" action="/" enctype="multipart/form-data" data-max="{max_files}">
<label class="drop" id="drop"><input id="files" type="file" name="images" accept="image/*,.heic,.heif,.avif" multiple required>
<span>Drop pictures here, or <u>choose them</u></span></label>
<input type="hidden" name="chosen" id="chosen" value="">
<div id="previews" class="previews"></div>
<p id="note" class="muted" role="status"></p>
<button type="submit" id="go">Score</button><span id="busy" class="busy" hidden><span class="spinner"></span> Scoring…</span>
</form>
<p class="muted">A whole shoot? <a href="/pick">Pick the best of up to {max_pick} pictures</a>, one per moment.</p>
{results}
<script>{script}</script>
</body></html>"""

# The page works without it (a plain form); with it: drag and drop, previews, the first N of
# more than N kept (and said), a spinner while the server scores.
SCRIPT = """
(() => {
  const form = document.getElementById('upload'), input = document.getElementById('files');
  const drop = document.getElementById('drop'), previews = document.getElementById('previews');
  const note = document.getElementById('note'), chosen = document.getElementById('chosen');
  const max = Number(form.dataset.max);
  function take(list) {
    const files = Array.from(list);
    const kept = new DataTransfer();
    files.slice(0, max).forEach(f => kept.items.add(f));
    input.files = kept.files;
    chosen.value = String(files.length);
    note.textContent = files.length > max
      ? `${files.length} chosen: the first ${max} will be scored.` : '';
    previews.replaceChildren(...Array.from(kept.files).map(f => {
      const img = document.createElement('img');
      img.src = URL.createObjectURL(f); img.alt = f.name; img.title = f.name;
      return img;
    }));
  }
  input.addEventListener('change', () => take(input.files));
  ['dragenter', 'dragover'].forEach(t => drop.addEventListener(t, e => {
    e.preventDefault(); drop.classList.add('over');
  }));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault(); drop.classList.remove('over'); take(e.dataTransfer.files);
  });
  const results = document.getElementById('results');  // after scoring: the answer in view
  if (results) results.scrollIntoView();
  form.addEventListener('submit', () => {
    document.getElementById('go').disabled = true;
    document.getElementById('busy').hidden = false;
  });
})();
"""
CAVEAT = (
    "A weak hint on any one picture: the percentages are the model's win probabilities, "
    "fitted on posts it did not train on."
)
NEXT_ON_PAGE = (
    f"“N% vs #k”: how likely a picture gets more likes than the next one down — {ODDS_RULE}; "
    "fitted on posts the model did not train on."
)


def render_page(
    model: str, max_files: int, max_mb: int, results: str = "", *, max_pick: int
) -> str:
    return PAGE.format(
        max_pick=max_pick,
        max_files=max_files,
        max_mb=max_mb,
        model=html.escape(model),
        results=results,
        script=SCRIPT,
    )


def render_error(message: str) -> str:
    return f'<p class="error" role="alert">{html.escape(message)}</p>'


def _common_advice(scored: Scored) -> tuple[str, bool]:
    """The content advice, said once when it is the same for every picture: (line, shared)."""
    texts = {r.suggestion.text for r in scored.items if r.suggestion is not None}
    if len(texts) != 1 or len(scored.items) < 2:
        return "", False
    (text,) = texts
    return (f"Advice for every picture here: {text}" if text else ""), True


def _card(
    pos: int, r: Ranked, thumb: str, shared: bool, past_thumbs: dict[str, str] | None = None
) -> str:
    name = html.escape(str(r.path))
    img = f'<img src="{thumb}" alt="{name}">' if thumb else ""
    tip = "" if r.suggestion is None or shared else html.escape(r.suggestion.text)
    if r.crop is not None:
        tip += f" {html.escape(r.crop.text)}"
    if r.quality is not None and r.quality.flags:
        tip = f'<span class="flags">{html.escape(r.quality.text)}</span> {tip}'
    seen = html.escape(", ".join(r.labels[:3])) if r.labels else ""
    sure = (
        f'<p class="sure">{r.p_beats_next:.0%} vs #{pos + 2}: '
        f"{html.escape(odds_words(r.p_beats_next))}</p>"
        if r.p_beats_next is not None
        else ""
    )
    band = (
        f'<div class="range">{range_text(r.low, r.high)}</div>'
        if r.low is not None and r.high is not None
        else ""
    )
    return (
        f'<div class="card">{img}<div class="score">{score_text(r.score)}{band}</div>'
        f'<div class="text"><b>#{pos + 1} {name}</b>{sure}<p class="tip">{tip}</p>'
        f'<p class="muted">{"seen: " + seen if seen else ""}</p>{_past(r, past_thumbs or {})}</div></div>'
    )


def _past(r: Ranked, thumbs: dict[str, str]) -> str:
    """serve --history: the post it already is, else its most similar past posts: the words,
    and each post's thumbnail with its score and date beneath (when its image can be read)."""
    posts, words = past_shown(r.already_posted, r.similar_posts)
    if not posts:
        return ""
    figures = "".join(
        f'<figure><img src="{thumbs[p.image]}" alt="your post of {html.escape(p.date)}" '
        f'width="64" height="64"><figcaption>{score_text(p.score)}</figcaption></figure>'
        for p in posts
        if thumbs.get(p.image)
    )
    shown = f'<div class="past-posts">{figures}</div>' if figures else ""
    return f'<p class="past">{html.escape(words)}</p>{shown}'


def render_results(scored: Scored) -> str:
    """Best first: the notes, one caveat line, the advice common to all, then one card each."""
    if not scored.items:
        return ""
    advice, shared = _common_advice(scored)
    parts = ['<h2 id="results">Best first</h2>']
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in scored.notes]
    meaning = [*score_meaning(scored.no_interval), NEXT_ON_PAGE]
    parts.append(f'<p class="muted caveat">{html.escape(" ".join(meaning))}</p>')
    if advice:
        parts.append(f'<p class="advice">{html.escape(advice)}</p>')
    for pos, r in enumerate(scored.items):
        parts.append(
            _card(pos, r, scored.thumbs.get(scored.index[pos], ""), shared, scored.past_thumbs)
        )
    parts += [f'<p class="error">skipped {html.escape(p)}</p>' for p in scored.problems]
    return "\n".join(parts)


PICK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>imagion — pick the best of a shoot</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; }} .muted {{ color: #666; font-size: .9rem; }} .error {{ color: #b00; }}
.pick {{ display: flex; gap: 1rem; align-items: flex-start; border-bottom: 1px solid #eee; padding: .8rem 0; }}
.pick > img {{ width: 128px; height: 128px; object-fit: cover; border-radius: .4rem; }}
.pick .text {{ flex: 1 1 auto; min-width: 0; overflow-wrap: anywhere; }}
.others img {{ width: 48px; height: 48px; object-fit: cover; border-radius: .2rem; margin: .1rem; opacity: .8; }}
</style></head><body>
<h1>Pick the best of a shoot, one per moment</h1>
<p class="muted">Up to {max_files} pictures, {max_mb} MB each. Near-duplicates (bursts, reframings,
re-saved copies) are grouped; the best of the best groups is picked, never two of one moment. Model:
{model}. <a href="/">Score up to {max_score} pictures</a>.</p>
<form method="post" action="/pick" enctype="multipart/form-data">
<input type="file" name="images" accept="image/*,.heic,.heif,.avif" multiple required>
<label>pictures to pick <input type="number" name="n" value="{n}" min="1" max="{max_files}"></label>
<button type="submit">Pick</button>
</form>
{results}
</body></html>"""


def render_pick_page(
    model: str, max_files: int, max_mb: int, results: str = "", *, max_score: int, n: int
) -> str:
    """The pick page: up to `max_files` pictures, `n` picked unless told (`max_score`: the
    score page's limit, in its link)."""
    return PICK_PAGE.format(
        max_files=max_files,
        max_mb=max_mb,
        model=html.escape(model),
        results=results,
        max_score=max_score,
        n=n,
    )


def render_pick(grouped: Grouped, picked: PickResult) -> str:
    """The picked pictures, best first, each with its verdict and its group's others small."""

    def thumb(r: Ranked, cls: str = "") -> str:
        src = grouped.thumbs.get(grouped.upload_of.get(id(r), -1), "")
        name = html.escape(str(r.path))
        return f'<img src="{src}" alt="{name}" title="{name}"{cls}>' if src else ""

    g = picked.grouping
    parts = [f"<h2>The {len(picked)} to post</h2>"]
    parts.append(f'<p class="muted">{g.summary("pictures")}. {html.escape(CAVEAT)}</p>')
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in picked.notes]
    for p in picked:
        others = "".join(thumb(r) for r in p.group.runners_up)
        parts.append(
            f'<div class="pick">{thumb(p.photo)}<div class="text"><b>#{p.place} '
            f"{html.escape(str(p.photo.path))}</b> · {score_text(p.photo.score)}/10"
            f'<p class="verdict">{html.escape(p.text)}</p>'
            f'<p class="flags">{html.escape(flag_text(p.photo.quality))}</p>'
            f'<div class="others">{others}</div>'
            "</div></div>"
        )
    parts += [f'<p class="error">skipped {html.escape(x)}</p>' for x in grouped.problems]
    return "\n".join(parts)
