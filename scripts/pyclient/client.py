"""A reelfarm client written from the .proto files alone (generated with grpcio-tools).

Uploads a template folder, submits a render, watches it, downloads the video and the poster,
and checks the error contract. Exits non-zero on any mismatch.

usage: client.py URL API_KEY TEMPLATE_DIR OUT_DIR
"""

import io
import os
import sys
import tarfile

import grpc

from reelfarm.v1 import common_pb2, render_pb2, render_pb2_grpc, template_pb2, template_pb2_grpc

CHUNK = 1 << 20


def fail(msg):
    print(f"python client: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def bundle(folder):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, _dirs, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(root, name)
                tar.add(path, arcname=os.path.relpath(path, folder))
    return buf.getvalue()


def upload_messages(data):
    yield template_pb2.UploadTemplateRequest(header=template_pb2.UploadTemplateHeader(aliases=["live"]))
    for i in range(0, len(data), CHUNK):
        yield template_pb2.UploadTemplateRequest(chunk=data[i : i + CHUNK])


def main():
    url, key, template_dir, out_dir = sys.argv[1:5]
    target = url.split("://", 1)[-1]
    channel = grpc.insecure_channel(target)
    auth = [("authorization", f"Bearer {key}")]
    templates = template_pb2_grpc.TemplateServiceStub(channel)
    renders = render_pb2_grpc.RenderServiceStub(channel)

    version = templates.UploadTemplate(upload_messages(bundle(template_dir)), metadata=auth)
    if version.name != "order-delivered" or "live" not in version.aliases:
        fail(f"unexpected template version {version}")
    print(f"python client: uploaded {version.name}@{version.version}")

    spec = render_pb2.RenderSpec(
        template="order-delivered@live",
        lang="hi",
        tokens={"first_name": "अनन्या", "product": "चाय केतली", "offer_code": "ANANYA5"},
        preset=common_pb2.PRESET_720P,
    )
    resp = renders.SubmitRender(render_pb2.SubmitRenderRequest(idempotency_key="py-1", spec=spec), metadata=auth)
    again = renders.SubmitRender(render_pb2.SubmitRenderRequest(idempotency_key="py-1", spec=spec), metadata=auth)
    if not resp.created or again.created or again.render.id != resp.render.id:
        fail("idempotent resubmission did not return the same render")
    render_id = resp.render.id

    last = None
    for update in renders.WatchRender(render_pb2.WatchRenderRequest(id=render_id), metadata=auth):
        last = update
    if last is None or last.state != common_pb2.RENDER_STATE_SUCCEEDED:
        fail(f"render did not succeed: {last}")
    print(f"python client: render {render_id} succeeded after {last.attempts} attempt(s)")

    for artifact, name, magic in (
        (common_pb2.ARTIFACT_VIDEO, "video.mp4", lambda b: b[4:8] == b"ftyp"),
        (common_pb2.ARTIFACT_POSTER, "poster.jpg", lambda b: b[:2] == b"\xff\xd8"),
    ):
        data = b"".join(
            c.data
            for c in renders.DownloadRender(render_pb2.DownloadRenderRequest(id=render_id, artifact=artifact), metadata=auth)
        )
        if not magic(data):
            fail(f"{name} does not look right ({len(data)} bytes)")
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        print(f"python client: downloaded {name} ({len(data)} bytes)")

    try:
        renders.GetRender(render_pb2.GetRenderRequest(id=render_id), metadata=[("authorization", "Bearer rf_wrong")])
        fail("a wrong API key was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            fail(f"wrong key: {e.code()}")
    bad = render_pb2.RenderSpec(template="order-delivered", lang="hi", tokens={"nickname": "x"})
    try:
        renders.SubmitRender(render_pb2.SubmitRenderRequest(idempotency_key="py-2", spec=bad), metadata=auth)
        fail("an unknown token was accepted")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT or not e.details().startswith("spec.tokens.nickname"):
            fail(f"unknown token: {e.code()} {e.details()}")
    print("python client: error contract holds")


if __name__ == "__main__":
    main()
