"""The upload page: a form for up to 5 pictures and, after scoring, one card per picture, best
first (thumbnail, score, bar, suggestion). Everything shown is escaped."""

from __future__ import annotations

import html

from imagion.scores import score_text
from imagion.serve.scorer import Scored

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>imagion — which picture will get more attention?</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.5rem; }} .muted {{ color: #666; font-size: .9rem; }}
form {{ border: 2px dashed #bbb; padding: 1.2rem; border-radius: .6rem; }}
button {{ font-size: 1rem; padding: .4rem 1.2rem; margin-top: .6rem; }}
.card {{ display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #eee; padding: .8rem 0; }}
.card img {{ flex: 0 0 128px; width: 128px; height: 128px; object-fit: cover; border-radius: .4rem; }}
.card .text {{ flex: 1 1 auto; min-width: 0; overflow-wrap: anywhere; }}
.score {{ flex: 0 0 4.5rem; font-size: 1.8rem; font-weight: 700; }}
.bar {{ background: #eee; height: .5rem; width: 100%; max-width: 12rem; border-radius: .25rem; }}
.card b {{ display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
@media (max-width: 480px) {{
  body {{ margin: 1rem auto; }}
  .card {{ gap: .6rem; }}
  .card img {{ flex-basis: 84px; width: 84px; height: 84px; }}
  .score {{ flex-basis: 3rem; font-size: 1.4rem; }}
}}
.bar span {{ display: block; height: 100%; background: #d6336c; border-radius: .25rem; }}
.error {{ color: #b00; }} .sure {{ margin: .3rem 0 0; font-size: .9rem; color: #444; }}
</style></head><body>
<h1>Which of these pictures will get more attention?</h1>
<form method="post" action="/" enctype="multipart/form-data">
<input type="file" name="images" accept="image/*" multiple required>
<br><button type="submit">Score</button>
<p class="muted">Up to {max_files} pictures (JPEG, PNG, WebP, …; {max_mb} MB each). Scores run from
0 (bad) to 10 (excellent); 5 is a typical post. "N% likely to get more likes than the next" is the
model's win probability, fitted on posts it did not train on. Model: {model}.</p>
</form>
{results}
</body></html>"""


def render_page(model: str, max_files: int, max_mb: int, results: str = "") -> str:
    return PAGE.format(
        max_files=max_files, max_mb=max_mb, model=html.escape(model), results=results
    )


def render_error(message: str) -> str:
    return f'<p class="error" role="alert">{html.escape(message)}</p>'


def render_results(scored: Scored) -> str:
    parts = ["<h2>Best first</h2>"] if scored.items else []
    for pos, r in enumerate(scored.items):
        name = html.escape(str(r.path))
        thumb = scored.thumbs.get(scored.index[pos], "")
        img = f'<img src="{thumb}" alt="{name}">' if thumb else ""
        tip = html.escape(r.suggestion.text) if r.suggestion else ""
        if r.crop is not None:
            tip += f" {html.escape(r.crop.text)}"
        seen = html.escape(", ".join(r.labels[:3])) if r.labels else ""
        sure = (
            f'<p class="sure">{r.p_beats_next:.0%} likely to get more likes than #{pos + 2}</p>'
            if r.p_beats_next is not None
            else ""
        )
        parts.append(
            f'<div class="card">{img}<div class="score">{score_text(r.score)}</div><div class="text">'
            f'<b>#{pos + 1} {name}</b><div class="bar"><span style="width:{r.score * 10:.0f}%">'
            f'</span></div>{sure}<p class="tip">{tip}</p>'
            f'<p class="muted">{"seen: " + seen if seen else ""}</p></div></div>'
        )
    parts += [f'<p class="error">skipped {html.escape(p)}</p>' for p in scored.problems]
    return "\n".join(parts)
