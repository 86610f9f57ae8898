from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from photos import search
from photos.models import Photo

register = template.Library()

_SNIPPET = 90


def _marked(text: str, words: list[str]) -> SafeString:
    """`text` escaped, with every word that starts with one of `words` in <mark>."""
    out: list[str] = []
    position = 0
    for match in search.WORD.finditer(text):
        out.append(escape(text[position : match.start()]))
        word = match.group()
        out.append(f"<mark>{escape(word)}</mark>" if word.lower().startswith(tuple(words)) else escape(word))
        position = match.end()
    out.append(escape(text[position:]))
    return mark_safe("".join(out))  # noqa: S308 -- every piece is escaped above


@register.filter
def search_snippet(photo: Photo, query: str) -> SafeString:
    """The part of the photo's searched text around its first match, the matching words marked."""
    words = search.terms(query)
    texts = [getattr(photo, field) for field in search.FIELDS if getattr(photo, field)]
    for text in texts:
        for match in search.WORD.finditer(text):
            if match.group().lower().startswith(tuple(words)):
                start = max(0, match.start() - _SNIPPET // 3)
                snippet = (
                    ("…" if start else "")
                    + text[start : start + _SNIPPET]
                    + ("…" if len(text) > start + _SNIPPET else "")
                )
                return _marked(snippet, words)
    return _marked(texts[0][:_SNIPPET] if texts else "", words)
