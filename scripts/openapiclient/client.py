"""A reelfarm HTTP client generated from docs/openapi.json alone (openapi-python-client).

Submits a render with metadata, reads it back, finds it in the list, waits until it succeeds
and fetches its signed video link; submits a second render and cancels it; checks that a bad
request gets a problem document naming the field. Exits non-zero on any mismatch.

usage: client.py HTTP_URL API_KEY
"""

import sys
import time
import urllib.request

from reelfarm_http import AuthenticatedClient
from reelfarm_http.api.renders import cancel_render, get_render, list_renders, submit_render
from reelfarm_http.models import (
    Preset,
    Problem,
    Render,
    RenderList,
    RenderState,
    SubmitRenderRequest,
    SubmitRenderRequestMetadata,
    SubmitRenderRequestTokens,
)

TIMEOUT_S = 120


def fail(msg):
    print(f"openapi client: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def request(key, first_name, metadata):
    return SubmitRenderRequest(
        template="order-delivered@live",
        lang="hi-IN",
        tokens=SubmitRenderRequestTokens.from_dict(
            {"first_name": first_name, "product": "चाय केतली", "offer_code": "SAVE10"}
        ),
        preset=Preset.WHATSAPP,
        metadata=SubmitRenderRequestMetadata.from_dict(metadata),
        idempotency_key=key,
    )


def main():
    url, key = sys.argv[1:3]
    client = AuthenticatedClient(base_url=url, token=key, timeout=30.0)

    # Submit with metadata: 201, then the same request again: 200 and the same render.
    resp = submit_render.sync_detailed(client=client, body=request("oa-1", "अनन्या", {"order_id": "4711"}))
    if resp.status_code != 201 or not isinstance(resp.parsed, Render):
        fail(f"submit: {resp.status_code} {resp.content!r}")
    render_id = resp.parsed.id
    again = submit_render.sync_detailed(client=client, body=request("oa-1", "अनन्या", {"order_id": "4711"}))
    if again.status_code != 200 or not isinstance(again.parsed, Render) or again.parsed.id != render_id:
        fail(f"idempotent resubmission: {again.status_code} {again.content!r}")
    print(f"openapi client: submitted {render_id}")

    got = get_render.sync(render_id, client=client)
    if not isinstance(got, Render) or got.lang != "hi" or got.tokens is None:
        fail(f"get: {got}")
    if got.tokens.additional_properties.get("first_name") != "अनन्या":
        fail(f"get: tokens {got.tokens}")

    page = list_renders.sync(client=client, page_size=10)
    if not isinstance(page, RenderList) or render_id not in [r.id for r in page.renders]:
        fail(f"list: {page}")

    deadline = time.monotonic() + TIMEOUT_S
    while True:
        got = get_render.sync(render_id, client=client)
        if not isinstance(got, Render):
            fail(f"get while waiting: {got}")
        if got.state in (RenderState.SUCCEEDED, RenderState.FAILED, RenderState.CANCELLED):
            break
        if time.monotonic() > deadline:
            fail(f"render still {got.state} after {TIMEOUT_S} s")
        time.sleep(0.5)
    if got.state != RenderState.SUCCEEDED:
        fail(f"render did not succeed: {got.state} {got.failure}")
    if got.metadata.additional_properties != {"order_id": "4711"}:
        fail(f"metadata did not come back: {got.metadata}")
    if not isinstance(got.video_url, str):
        fail(f"a succeeded render has no video_url: {got}")
    with urllib.request.urlopen(got.video_url, timeout=30) as video:
        data = video.read()
    if data[4:8] != b"ftyp" or len(data) != got.output.video_bytes:
        fail(f"video link gave {len(data)} bytes, not the MP4 of {got.output.video_bytes}")
    print(f"openapi client: render {render_id} succeeded ({len(data)} bytes), metadata back")

    # A second render, cancelled.
    second = submit_render.sync(client=client, body=request("oa-2", "Rahul", {"order_id": "4712"}))
    if not isinstance(second, Render):
        fail(f"second submit: {second}")
    cancelled = cancel_render.sync(second.id, client=client)
    if not isinstance(cancelled, Render) or cancelled.state not in (RenderState.CANCELLED, RenderState.SUCCEEDED):
        fail(f"cancel: {cancelled}")
    cancelled_page = list_renders.sync(client=client, state=RenderState.CANCELLED)
    if cancelled.state == RenderState.CANCELLED and second.id not in [r.id for r in cancelled_page.renders]:
        fail(f"the cancelled render is not listed as cancelled: {cancelled_page}")
    print(f"openapi client: render {second.id} {cancelled.state}")

    # A bad request: a problem document naming the field.
    bad = request("oa-3", "x" * 300, {})
    resp = submit_render.sync_detailed(client=client, body=bad)
    if resp.status_code != 400 or resp.headers.get("content-type") != "application/problem+json":
        fail(f"bad request: {resp.status_code} {resp.headers.get('content-type')}")
    if not isinstance(resp.parsed, Problem) or resp.parsed.field != "tokens.first_name":
        fail(f"the problem does not name tokens.first_name: {resp.content!r}")
    conflict = submit_render.sync_detailed(client=client, body=request("oa-1", "Someone else", {}))
    if conflict.status_code != 409 or not isinstance(conflict.parsed, Problem):
        fail(f"reused key: {conflict.status_code} {conflict.content!r}")
    print("openapi client: problems name the field")


if __name__ == "__main__":
    main()
