"""Consistency checks of the deployment files that no off-the-shelf validator makes.

scripts/deploy-check runs the validators (hadolint, docker compose config, kustomize,
kubernetes-validate, systemd-analyze) and these checks beside them:

  kustomize DIR KUBECTL          every kustomization's resources, components and patch files
                                 exist; each overlay renders; every targeted patch matches an
                                 object; the optional components render on top of an overlay
  kubernetes DIR KUBECTL VALIDATE_BIN VERSION...
                                 the rendered overlays and the Secret example against the
                                 Kubernetes schemas (strict), and the cross-references between
                                 objects, including the custom resources (ScaledObject,
                                 ServiceMonitor) that no schema here describes
  compose DIR                    every variable compose.yaml reads is in .env.example, and
                                 the worker's stop grace period outlasts its drain
  systemd DIR                    the units' sandboxing, GPU access and stop timeout
  libs DOCKERFILE BIN=STAGE,...  every shared library the binary links comes from a package
                                 the stage installs
  env-names ROOT REELFARM        every REELFARM_* variable the files give a coordinator or a
                                 worker is one that `reelfarm serve|work --help` lists

Each prints nothing on success and one line per problem on stderr otherwise (exit status 1).
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load(path):
    docs = load_all(path)
    if len(docs) != 1:
        raise SystemExit(f"{path}: expected one YAML document, found {len(docs)}")
    return docs[0]


# ------------------------------------------------------------------------------------------
# Kustomize layout


def kustomizations(root):
    for dirpath, _dirs, files in os.walk(root):
        if "kustomization.yaml" in files:
            yield dirpath


def check_kustomization_files(kdir):
    k = load(os.path.join(kdir, "kustomization.yaml"))
    for key in ("resources", "components"):
        for entry in k.get(key) or []:
            if not os.path.exists(os.path.join(kdir, entry)):
                problem(f"{kdir}/kustomization.yaml: {key} entry {entry!r} does not exist")
    for patch in k.get("patches") or []:
        path = patch.get("path")
        if path and not os.path.isfile(os.path.join(kdir, path)):
            problem(f"{kdir}/kustomization.yaml: patch file {path!r} does not exist")
        if not path and not patch.get("patch"):
            problem(f"{kdir}/kustomization.yaml: a patch has neither path nor patch")
    return k


def render(kubectl, kdir):
    out = subprocess.run(
        [kubectl, "kustomize", kdir], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        problem(f"kustomize {kdir}: {out.stderr.strip()}")
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def api_group(obj):
    api = obj.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def matches(target, obj):
    meta = obj.get("metadata", {})
    if "kind" in target and target["kind"] != obj.get("kind"):
        return False
    if "name" in target and target["name"] != meta.get("name"):
        return False
    if "group" in target and target["group"] != api_group(obj):
        return False
    if "version" in target and obj.get("apiVersion", "").split("/")[-1] != target["version"]:
        return False
    return True


def overlays(root):
    odir = os.path.join(root, "overlays")
    return sorted(os.path.join(odir, d) for d in os.listdir(odir))


def components(root):
    cdir = os.path.join(root, "components")
    return sorted(os.path.join(cdir, d) for d in os.listdir(cdir))


def cmd_kustomize(root, kubectl):
    for kdir in kustomizations(root):
        check_kustomization_files(kdir)
    for overlay in overlays(root):
        k = load(os.path.join(overlay, "kustomization.yaml"))
        objs = render(kubectl, overlay)
        if not objs:
            continue
        # kustomize refuses a strategic-merge patch that matches nothing, but lets a targeted
        # patch whose selector matches nothing pass silently.
        for patch in k.get("patches") or []:
            target = patch.get("target")
            if target and not any(matches(target, o) for o in objs):
                problem(f"{overlay}: patch target {target} matches no object")
    # Every optional component must render on top of every overlay, as a user adding it to
    # `components:` would have it.
    with tempfile.TemporaryDirectory() as tmp:
        for overlay in overlays(root):
            render_with_components(kubectl, overlay, root, tmp)


# ------------------------------------------------------------------------------------------
# Kubernetes objects


def by_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def named(objs, kind, name):
    for o in by_kind(objs, kind):
        if o["metadata"]["name"] == name:
            return o
    return None


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_env(container):
    return {e["name"]: e for e in container.get("env") or []}


def check_pod_template(where, deploy, objs, secret):
    spec = deploy["spec"]["template"]["spec"]
    labels = deploy["spec"]["template"]["metadata"].get("labels", {})
    if not selects(deploy["spec"]["selector"].get("matchLabels"), labels):
        problem(f"{where}: the selector does not match the pod template's labels")
    annotations = deploy["spec"]["template"]["metadata"].get("annotations", {})
    for c in spec["containers"]:
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        numbers = set(ports.values())
        scrape = annotations.get("prometheus.io/port")
        if scrape is not None and int(scrape) not in numbers:
            problem(f"{where}: prometheus.io/port {scrape} is not a port of {c['name']}")
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.get(probe_name)
            if not probe:
                continue
            port = (probe.get("httpGet") or probe.get("grpc") or {}).get("port")
            if isinstance(port, str) and port not in ports:
                problem(f"{where}: {probe_name} uses port {port!r}, not one of {sorted(ports)}")
            if isinstance(port, int) and port not in numbers:
                problem(f"{where}: {probe_name} uses port {port}, not one of {sorted(numbers)}")
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                if ref["name"] != secret["metadata"]["name"]:
                    problem(f"{where}: {e['name']} reads Secret {ref['name']!r}, not the example's")
                elif ref["key"] not in secret.get("stringData", {}):
                    problem(f"{where}: {e['name']} reads key {ref['key']!r} the Secret lacks")
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                cm = named(objs, "ConfigMap", ref["name"])
                if cm is None or ref["key"] not in cm.get("data", {}):
                    problem(f"{where}: {e['name']} reads {ref['name']}/{ref['key']}: missing")
        for src in c.get("envFrom") or []:
            ref = src.get("configMapRef")
            if ref and named(objs, "ConfigMap", ref["name"]) is None:
                problem(f"{where}: envFrom names ConfigMap {ref['name']!r}, not deployed")
        volumes = {v["name"] for v in spec.get("volumes") or []}
        for m in c.get("volumeMounts") or []:
            if m["name"] not in volumes:
                problem(f"{where}: mounts volume {m['name']!r}, which the pod lacks")


def check_objects(where, objs, secret):
    coordinator = named(objs, "Deployment", "reelfarm-coordinator")
    worker = named(objs, "Deployment", "reelfarm-worker")
    if coordinator is None or worker is None:
        problem(f"{where}: the coordinator and worker Deployments must both be rendered")
        return
    for d in (coordinator, worker):
        check_pod_template(f"{where}: Deployment {d['metadata']['name']}", d, objs, secret)

    # Coordinator: several replicas, ready on /readyz, alive on /healthz, one down at a time.
    c = coordinator["spec"]["template"]["spec"]["containers"][0]
    if coordinator["spec"].get("replicas", 1) < 2:
        problem(f"{where}: the coordinator runs fewer than 2 replicas")
    if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
        problem(f"{where}: the coordinator's readiness probe is not GET /readyz")
    if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
        problem(f"{where}: the coordinator's liveness probe is not GET /healthz")
    pdbs = [
        p
        for p in by_kind(objs, "PodDisruptionBudget")
        if selects(
            p["spec"]["selector"].get("matchLabels"),
            coordinator["spec"]["template"]["metadata"]["labels"],
        )
    ]
    if not pdbs:
        problem(f"{where}: no PodDisruptionBudget covers the coordinator")

    # Worker: the grace period outlasts the drain.
    w = worker["spec"]["template"]["spec"]["containers"][0]
    env = container_env(w)
    drain = int(env.get("REELFARM_DRAIN_TIMEOUT", {}).get("value", 900))
    grace = worker["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    if grace <= drain:
        problem(
            f"{where}: worker terminationGracePeriodSeconds {grace} must exceed "
            f"REELFARM_DRAIN_TIMEOUT {drain}"
        )
    for probe_name, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        if (w.get(probe_name) or {}).get("httpGet", {}).get("path") != path:
            problem(f"{where}: the worker's {probe_name} is not GET {path}")
    coordinator_url = env.get("REELFARM_COORDINATOR", {}).get("value", "")
    m = re.fullmatch(r"https?://([a-z0-9-]+):(\d+)", coordinator_url)
    svc = named(objs, "Service", m.group(1)) if m else None
    if svc is None or int(m.group(2)) not in [p["port"] for p in svc["spec"]["ports"]]:
        problem(f"{where}: the worker's REELFARM_COORDINATOR {coordinator_url!r} is no Service port")

    # Services select pods and name their ports.
    for svc in by_kind(objs, "Service"):
        sel = svc["spec"].get("selector")
        pods = [
            d
            for d in by_kind(objs, "Deployment")
            if selects(sel, d["spec"]["template"]["metadata"].get("labels", {}))
        ]
        if not pods:
            problem(f"{where}: Service {svc['metadata']['name']} selects no Deployment's pods")
            continue
        names = {
            p.get("name")
            for d in pods
            for ctr in d["spec"]["template"]["spec"]["containers"]
            for p in ctr.get("ports") or []
        }
        for p in svc["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
                problem(f"{where}: Service {svc['metadata']['name']} targets unknown port {p['targetPort']!r}")

    for so in by_kind(objs, "ScaledObject"):
        check_scaled_object(where, so, objs)
    for sm in by_kind(objs, "ServiceMonitor"):
        check_service_monitor(where, sm, objs)


SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}


def check_scaled_object(where, so, objs):
    """The ScaledObject's shape (keda.sh/v1alpha1), and that it scales the worker Deployment on
    the coordinator's queue with the workers' slots as the threshold."""
    name = f"{where}: ScaledObject {so['metadata'].get('name')}"
    if so.get("apiVersion") != "keda.sh/v1alpha1":
        problem(f"{name}: apiVersion must be keda.sh/v1alpha1")
    spec = so.get("spec") or {}
    for key in sorted(set(spec) - SCALED_OBJECT_SPEC):
        problem(f"{name}: unknown field spec.{key}")
    ref = spec.get("scaleTargetRef") or {}
    target = named(objs, ref.get("kind", "Deployment"), ref.get("name"))
    if target is None:
        problem(f"{name}: scaleTargetRef names no rendered {ref.get('kind', 'Deployment')}")
    for key in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        if key in spec and (not isinstance(spec[key], int) or spec[key] < 0):
            problem(f"{name}: spec.{key} must be a non-negative integer")
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        problem(f"{name}: minReplicaCount exceeds maxReplicaCount")
    triggers = spec.get("triggers") or []
    if not triggers:
        problem(f"{name}: no triggers")
    for t in triggers:
        md = t.get("metadata") or {}
        if t.get("type") != "prometheus":
            problem(f"{name}: trigger type {t.get('type')!r} is not prometheus")
            continue
        for key in ("serverAddress", "query", "threshold"):
            if not isinstance(md.get(key), str) or not md.get(key):
                problem(f"{name}: prometheus trigger needs metadata.{key} as a string")
        if not str(md.get("serverAddress", "")).startswith(("http://", "https://")):
            problem(f"{name}: serverAddress must be an http(s) URL")
        if "reelfarm_queue_depth" not in str(md.get("query", "")):
            problem(f"{name}: the query does not read reelfarm_queue_depth")
        if str(md.get("query", "")).count("(") != str(md.get("query", "")).count(")"):
            problem(f"{name}: the query's parentheses do not balance")
        if target is not None:
            slots = container_env(target["spec"]["template"]["spec"]["containers"][0]).get(
                "REELFARM_SLOTS", {"value": "1"}
            )["value"]
            if str(md.get("threshold")) != str(slots):
                problem(
                    f"{name}: threshold {md.get('threshold')!r} must equal the workers' "
                    f"REELFARM_SLOTS {slots!r} (renders per worker)"
                )


def check_service_monitor(where, sm, objs):
    name = f"{where}: ServiceMonitor {sm['metadata'].get('name')}"
    if sm.get("apiVersion") != "monitoring.coreos.com/v1":
        problem(f"{name}: apiVersion must be monitoring.coreos.com/v1")
    spec = sm.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels")
    services = [s for s in by_kind(objs, "Service") if selects(sel, s["metadata"].get("labels", {}))]
    if not services:
        problem(f"{name}: selects no Service")
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        problem(f"{name}: no endpoints")
    for ep in endpoints:
        ports = {p.get("name") for s in services for p in s["spec"]["ports"]}
        if ep.get("port") not in ports:
            problem(f"{name}: endpoint port {ep.get('port')!r} is not a port of the Services")
        if not str(ep.get("path", "/metrics")).startswith("/"):
            problem(f"{name}: endpoint path must start with /")


CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor"}


def cmd_kubernetes(root, kubectl, validate, versions):
    secret_path = os.path.join(root, "secret.example.yaml")
    secret = load(secret_path)
    with tempfile.TemporaryDirectory() as tmp:
        files = [secret_path]
        rendered = []
        for overlay in overlays(root):
            objs = render(kubectl, overlay)
            rendered.append((overlay, objs))
            # Overlays plus every optional component, as deployed with all of them.
            extra = render_with_components(kubectl, overlay, root, tmp)
            for label, docs in ((overlay, objs), (f"{overlay}+components", extra)):
                check_objects(label, docs, secret)
                path = os.path.join(tmp, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".yaml")
                with open(path, "w", encoding="utf-8") as f:
                    yaml.safe_dump_all(docs, f)
                files.append(path)
        nvidia = dict(rendered).get(os.path.join(root, "overlays", "nvidia"))
        if nvidia:
            w = named(nvidia, "Deployment", "reelfarm-worker")
            limits = w["spec"]["template"]["spec"]["containers"][0]["resources"].get("limits", {})
            if str(limits.get("nvidia.com/gpu")) != "1":
                problem("overlays/nvidia: the worker does not limit nvidia.com/gpu to 1")
        for version in versions:
            out = subprocess.run(
                [validate, "--strict", "--kubernetes-version", version, *files],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = (out.stdout + out.stderr).splitlines()
            for line in lines:
                unknown = re.search(r"Couldn't find schema for kind (\w+)", line)
                if unknown and unknown.group(1) in CUSTOM_KINDS:
                    continue  # checked above by check_scaled_object / check_service_monitor
                if line.startswith("INFO") or not line.strip():
                    continue
                problem(f"kubernetes-validate {version}: {line}")
            if out.returncode != 0 and not lines:
                problem(f"kubernetes-validate {version}: exit status {out.returncode}")


def render_with_components(kubectl, overlay, root, tmp):
    """The overlay with every component it does not include already."""
    kdir = os.path.join(tmp, "all-" + os.path.basename(overlay))
    os.makedirs(kdir, exist_ok=True)
    included = {
        os.path.normpath(os.path.join(overlay, c))
        for c in load(os.path.join(overlay, "kustomization.yaml")).get("components") or []
    }
    # kustomize takes only relative paths to other kustomizations.
    comps = [
        os.path.relpath(c, kdir)
        for c in components(root)
        if os.path.normpath(c) not in included
    ]
    with open(os.path.join(kdir, "kustomization.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(overlay, kdir)],
                "components": comps,
            },
            f,
        )
    return render(kubectl, kdir)


# ------------------------------------------------------------------------------------------
# Compose


def cmd_compose(cdir):
    with open(os.path.join(cdir, "compose.yaml"), encoding="utf-8") as f:
        text = f.read()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    documented = set()
    with open(os.path.join(cdir, ".env.example"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*#?\s*([A-Z0-9_]+)=", line)
            if m:
                documented.add(m.group(1))
    for var in sorted(used - documented):
        problem(f"{cdir}/compose.yaml reads ${{{var}}}, which .env.example does not document")
    for var in sorted(documented - used):
        problem(f"{cdir}/.env.example documents {var}, which compose.yaml does not read")
    compose = yaml.safe_load(text)
    services = compose.get("services") or {}
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                problem(f"{cdir}/compose.yaml: {name} depends on unknown service {dep!r}")
    worker = services.get("worker") or {}
    drain = re.fullmatch(
        r"\$\{REELFARM_DRAIN_TIMEOUT:-(\d+)\}",
        str((worker.get("environment") or {}).get("REELFARM_DRAIN_TIMEOUT", "")),
    )
    grace = re.fullmatch(r"(\d+)s", str(worker.get("stop_grace_period", "")))
    if not drain or not grace or int(grace.group(1)) <= int(drain.group(1)):
        problem(f"{cdir}/compose.yaml: the worker's stop_grace_period must exceed its drain timeout")


# ------------------------------------------------------------------------------------------
# systemd (systemd-analyze verify checks the syntax; this checks the choices)

COMMON_SANDBOX = [
    "DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
    "PrivateTmp=yes", "KillSignal=SIGTERM", "Restart=on-failure",
]


def unit_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def cmd_systemd(sdir):
    coordinator = unit_lines(os.path.join(sdir, "reelfarm-coordinator.service"))
    worker = unit_lines(os.path.join(sdir, "reelfarm-worker@.service"))
    for name, lines in (("reelfarm-coordinator.service", coordinator), ("reelfarm-worker@.service", worker)):
        for want in COMMON_SANDBOX:
            if want not in lines:
                problem(f"{sdir}/{name}: missing {want}")
        if not any(line.startswith("EnvironmentFile=-/etc/reelfarm/") for line in lines):
            problem(f"{sdir}/{name}: no optional EnvironmentFile under /etc/reelfarm")
    if not any(line.startswith("StateDirectory=") for line in coordinator):
        problem(f"{sdir}/reelfarm-coordinator.service: no StateDirectory")
    if not any(line.startswith("CacheDirectory=") for line in worker):
        problem(f"{sdir}/reelfarm-worker@.service: no CacheDirectory")
    # The worker needs the GPU: no private /dev, the device groups, the device nodes allowed.
    if any(line.startswith("PrivateDevices=") and line != "PrivateDevices=no" for line in worker):
        problem(f"{sdir}/reelfarm-worker@.service: PrivateDevices hides the GPU")
    groups = " ".join(l.split("=", 1)[1] for l in worker if l.startswith("SupplementaryGroups="))
    for g in ("video", "render"):
        if g not in groups.split():
            problem(f"{sdir}/reelfarm-worker@.service: SupplementaryGroups lacks {g}")
    allowed = " ".join(l for l in worker if l.startswith("DeviceAllow="))
    for dev in ("/dev/dri", "/dev/nvidiactl", "char-nvidia-frontend"):
        if dev not in allowed:
            problem(f"{sdir}/reelfarm-worker@.service: no DeviceAllow for {dev}")
    stop = [l.split("=", 1)[1] for l in worker if l.startswith("TimeoutStopSec=")]
    drain = 900
    for line in unit_lines(os.path.join(sdir, "worker.env")):
        if line.startswith("REELFARM_DRAIN_TIMEOUT="):
            drain = int(line.split("=", 1)[1])
    m = re.fullmatch(r"(\d+)s?", stop[0]) if stop else None
    if not m or int(m.group(1)) <= drain:
        problem(
            f"{sdir}/reelfarm-worker@.service: TimeoutStopSec must exceed the drain timeout "
            f"({drain} s in worker.env)"
        )


# ------------------------------------------------------------------------------------------
# Environment variable names against the binary


# Read by the tracing filter or by libraries, not by command-line arguments.
NOT_ARGUMENTS = {"REELFARM_LOG"}


def help_env(reelfarm, sub):
    out = subprocess.run(
        [reelfarm, sub, "--help"], capture_output=True, text=True, check=True
    ).stdout
    return set(re.findall(r"env: (REELFARM_[A-Z0-9_]+)", out)) | NOT_ARGUMENTS


def role_env(root):
    """(file, role, REELFARM_* name) for every variable a deployment file gives a process."""
    found = []

    def add(path, role, names):
        for n in names:
            if n.startswith("REELFARM_"):
                found.append((os.path.relpath(path, root), role, n))

    dockerfile = os.path.join(root, "Dockerfile")
    stage = None
    with open(dockerfile, encoding="utf-8") as f:
        text = f.read()
    for line in text.splitlines():
        m = re.match(r"FROM \S+ AS (\w+)", line)
        if m:
            stage = m.group(1)
        if stage in ("coordinator", "worker"):
            add(dockerfile, stage, re.findall(r"\b(REELFARM_[A-Z0-9_]+)=", line))

    compose = os.path.join(root, "deploy", "compose", "compose.yaml")
    for name, svc in (load(compose).get("services") or {}).items():
        if name in ("coordinator", "worker"):
            add(compose, name, (svc.get("environment") or {}).keys())

    kdir = os.path.join(root, "deploy", "kubernetes")
    for dirpath, _dirs, files in os.walk(kdir):
        for fname in files:
            if not fname.endswith(".yaml") or fname == "kustomization.yaml":
                continue
            path = os.path.join(dirpath, fname)
            for doc in load_all(path):
                if doc.get("kind") == "ConfigMap":
                    add(path, "coordinator", (doc.get("data") or {}).keys())
                if doc.get("kind") == "Secret":
                    add(path, "coordinator", (doc.get("stringData") or {}).keys())
                pod = (((doc.get("spec") or {}).get("template") or {}).get("spec")) or {}
                for c in pod.get("containers") or []:
                    if c.get("name") in ("coordinator", "worker"):
                        add(path, c["name"], [e["name"] for e in c.get("env") or []])

    sdir = os.path.join(root, "deploy", "systemd")
    for fname in sorted(os.listdir(sdir)):
        role = "coordinator" if "coordinator" in fname else "worker"
        path = os.path.join(sdir, fname)
        with open(path, encoding="utf-8") as f:
            for line in f:
                if fname.endswith(".env"):
                    m = re.match(r"\s*#?\s*(REELFARM_[A-Z0-9_]+)=", line)
                    names = [m.group(1)] if m else []
                else:
                    names = re.findall(r"Environment=(REELFARM_[A-Z0-9_]+)=", line)
                add(path, role, names)
    return found


def cmd_env_names(root, reelfarm):
    known = {"coordinator": help_env(reelfarm, "serve"), "worker": help_env(reelfarm, "work")}
    # The Secret's join token is also the workers'; the check by role covers the coordinator.
    for path, role, name in role_env(root):
        if name not in known[role]:
            sub = "serve" if role == "coordinator" else "work"
            problem(f"{path}: {name} is given to the {role}, but `reelfarm {sub} --help` lists no such variable")


# ------------------------------------------------------------------------------------------
# The images' shared libraries against the binaries' needs

# In every debian:bookworm-slim image already (apt itself depends on them).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def stage_packages(dockerfile):
    """Packages `apt-get install` names in each stage of the Dockerfile."""
    stages, stage, text = {}, None, ""
    with open(dockerfile, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"FROM \S+ AS (\w+)", line)
            if m:
                stage = m.group(1)
                stages[stage] = set()
            if stage and not line.lstrip().startswith("#"):
                text = text + line
                if not line.rstrip().endswith("\\"):
                    for cmd in re.findall(r"apt-get install ([^&;]*)", text):
                        stages[stage] |= {
                            w for w in cmd.replace("\\", " ").split() if not w.startswith("-")
                        }
                    text = ""
    return stages


def needed(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)


def package_of(soname):
    out = subprocess.run(["dpkg", "-S", soname], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        if path.endswith("/" + soname):
            return pkg.split(":")[0]
    return None


# Loaded at run time (dlopen), so absent from NEEDED: wgpu's Vulkan loader, and Mesa's
# software Vulkan driver as the fallback without a GPU.
LOADED = {"worker": ["libvulkan1", "mesa-vulkan-drivers"]}


def cmd_libs(dockerfile, *specs):
    """Each SPEC is BINARY=STAGE[,STAGE]: every library the binary links dynamically must come
    from a package the stage installs (or the base image has)."""
    stages = stage_packages(dockerfile)
    for stage, pkgs in LOADED.items():
        for pkg in pkgs:
            if pkg not in stages.get(stage, set()):
                problem(f"{dockerfile}: the {stage} image lacks {pkg}, loaded at run time")
    for spec in specs:
        binary, _, names = spec.partition("=")
        for soname in needed(binary):
            pkg = package_of(soname)
            if pkg is None:
                problem(f"{binary} needs {soname}, which no installed Debian package provides")
                continue
            for stage in names.split(","):
                if pkg not in BASE_PACKAGES and pkg not in stages.get(stage, set()):
                    problem(
                        f"{dockerfile}: the {stage} image lacks {pkg} ({soname}, which "
                        f"{os.path.basename(binary)} links)"
                    )


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "kustomize":
        cmd_kustomize(*args)
    elif cmd == "kubernetes":
        cmd_kubernetes(args[0], args[1], args[2], args[3:])
    elif cmd == "compose":
        cmd_compose(*args)
    elif cmd == "systemd":
        cmd_systemd(*args)
    elif cmd == "libs":
        cmd_libs(*args)
    elif cmd == "env-names":
        cmd_env_names(*args)
    else:
        raise SystemExit(f"unknown check {cmd!r}\n{__doc__}")
    for p in PROBLEMS:
        print(p, file=sys.stderr)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
