"""An ASGI middleware that keeps the demo's page from reaching other hosts.

Gradio's page template links a script from a CDN (an iframe resizer, for pages embedded in others) and preconnects to
Google's font servers. Offline these fail or stall, and they tell third parties that the demo was opened. The
middleware removes every ``<script src=...>`` and ``<link href=...>`` of an HTML response whose URL is absolute
(``http(s)://`` or ``//``); the app's own assets are relative and stay.
"""
import re

_EXTERNAL_TAG = re.compile(
    rb'<script\b[^>]*\bsrc\s*=\s*["\'](?:https?:)?//[^"\']*["\'][^>]*>\s*</script>'
    rb'|<link\b[^>]*\bhref\s*=\s*["\'](?:https?:)?//[^"\']*["\'][^>]*>', re.I)


def strip_external_tags(html):
    """``html`` (bytes) without the script and link tags that load from absolute URLs."""
    return _EXTERNAL_TAG.sub(b'', html)


class OfflinePage:
    """ASGI middleware applying :func:`strip_external_tags` to HTML responses (other responses pass unchanged).

    Args:
        app: The ASGI app it wraps.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        start, body = None, []

        async def rewrite(message):
            nonlocal start
            if message['type'] == 'http.response.start':
                headers = dict(message.get('headers') or [])
                if not headers.get(b'content-type', b'').startswith(b'text/html') or b'content-encoding' in headers:
                    start = False
                    await send(message)
                else:
                    start = message
                return
            if start is False or message['type'] != 'http.response.body':
                await send(message)
                return
            body.append(message.get('body', b''))
            if message.get('more_body'):
                return
            html = strip_external_tags(b''.join(body))
            headers = [(k, v) for k, v in start.get('headers') or [] if k != b'content-length']
            await send(dict(start, headers=headers + [(b'content-length', str(len(html)).encode())]))
            await send(dict(type='http.response.body', body=html))

        await self.app(scope, receive, rewrite)
