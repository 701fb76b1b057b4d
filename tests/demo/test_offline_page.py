"""The page middleware: tags loading from other hosts are removed from HTML responses, nothing else changes."""
import asyncio

from projects.earthmind.demo.offline_page import OfflinePage, strip_external_tags

PAGE = (b'<head><link rel="preconnect" href="https://fonts.googleapis.com" />'
        b'<script src="https://cdnjs.cloudflare.com/x.js" async></script>'
        b'<script type="module" src="./assets/index.js"></script><link rel="stylesheet" href="./assets/a.css">'
        b'<script>window.x = "https://example.com";</script></head>')
KEPT = (b'<head><script type="module" src="./assets/index.js"></script><link rel="stylesheet" href="./assets/a.css">'
        b'<script>window.x = "https://example.com";</script></head>')


def test_external_tags_are_removed_and_local_ones_kept():
    assert strip_external_tags(PAGE) == KEPT
    assert strip_external_tags(b'<link href="//cdn.example/x.css">ok') == b'ok'


def _serve(content_type, chunks):
    async def app(scope, receive, send):
        await send(dict(type='http.response.start', status=200,
                        headers=[(b'content-type', content_type), (b'content-length', b'999')]))
        for i, chunk in enumerate(chunks):
            await send(dict(type='http.response.body', body=chunk, more_body=i < len(chunks) - 1))

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(OfflinePage(app)(dict(type='http'), None, send))
    return sent


def test_html_responses_are_rewritten_with_their_length_and_others_pass():
    sent = _serve(b'text/html; charset=utf-8', [PAGE[:50], PAGE[50:]])
    assert sent[-1]['body'] == KEPT
    assert dict(sent[0]['headers'])[b'content-length'] == str(len(KEPT)).encode()
    sent = _serve(b'application/json', [PAGE])
    assert sent[1]['body'] == PAGE and dict(sent[0]['headers'])[b'content-length'] == b'999'
