"""deploy/k8s (kustomize) and docker-compose.yml follow the app (SPEC §12).

Kubernetes: `kubectl kustomize` builds the base and the production overlay
with no warning but the two deprecation notices kustomize v5 gives for the
fields kept for kustomize v2.0.3; every document is valid for the Kubernetes
API (kubernetes-validate, strict: no unknown field); and the invariants hold:
one worker Deployment per Celery queue of the settings, beat once, the web
with its probes, HPA and PDB, resources everywhere, env from the ConfigMap and
the Secret only, migrations as a Job, and no environment variable the app
does not read (a typo would otherwise be ignored).

Compose: the file is valid for the Compose Specification (its JSON schema, as
check-jsonschema ships it), one worker service per queue, beat once, and the
`scale` profile adds the replica, PgBouncer and a second web without touching
the default stack. With a `docker compose` binary, `config` checks both too.

kubectl: Debian's `kubernetes-client` (apt-get install kubernetes-client) or
any newer one; KUBECTL=/path picks another. Skipped without it, except where
REQUIRE_KUBECTL is set (CI): then the run fails.
"""

import configparser
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from importlib import resources
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.conf import settings

from core.testing import BASE_DIR

K8S = BASE_DIR / "deploy" / "k8s"
COMPOSE_DIR = BASE_DIR / "deploy" / "compose"
TARGETS = ["base", "overlays/production"]
PRODUCTION = "overlays/production"
KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
# The oldest Kubernetes the manifests are meant for, and the newest schema
# kubernetes-validate has.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# kustomize v2.0.3 (Debian's kubectl 1.20) has no other way to use a base
# directory or patch it; kustomize v5 builds them too, with a notice each.
KEPT_FOR_KUSTOMIZE_V2 = {"bases", "patchesStrategicMerge"}
DEPRECATION = re.compile(r"^# Warning: '(\w+)' is deprecated\. ")
# What kustomize v2.0.3 understands (and v5 still does, commonLabels aside:
# deprecated there, so each manifest carries its labels).
KUSTOMIZE_V2_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "bases",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "commonAnnotations",
    "images",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
}
SECRET_NAME = "orders-secrets"
COMPONENT = "app.kubernetes.io/component"
SECRET_EXAMPLE = K8S / PRODUCTION / "secret.example.env"
# Never in a ConfigMap (nor in the repository): they go in the Secret.
SECRET_LIKE = re.compile(r"SECRET|PASSWORD|TOKEN|DSN|_URL$|_URLS$")
NOT_SECRET = {"BACKUP_STORAGE_URL", "AWS_S3_ENDPOINT_URL", "AWS_SNS_ENDPOINT_URL"}

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None and not os.environ.get("REQUIRE_KUBECTL"),
    reason="needs kubectl: apt-get install kubernetes-client",
)


# --- What the app reads ------------------------------------------------------------------

READS = re.compile(
    r"""(?:\benv\.\w+\(|os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']([A-Z][A-Z0-9_]*)["']"""
)


@functools.cache
def variables_the_app_reads() -> frozenset[str]:
    """Every environment variable settings.py and gunicorn.conf.py read."""
    names = set()
    for path in (BASE_DIR / "orders_project" / "settings.py", BASE_DIR / "gunicorn.conf.py"):
        names |= set(READS.findall(path.read_text()))
    assert {"DATABASE_URL", "SECRET_KEY", "GUNICORN_WORKERS"} <= names  # the grep works
    return frozenset(names)


def celery_queues() -> set[str]:
    """The queues tasks go to: the routes' and the default one."""
    queues = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    queues.add(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"))
    return queues


def consumed_queues(argv: list[str]) -> list[str]:
    """The queues a `celery ... worker` command line consumes (-Q a,b)."""
    for i, arg in enumerate(argv):
        if arg in ("-Q", "--queues"):
            return argv[i + 1].split(",")
        if arg.startswith("--queues="):
            return arg.partition("=")[2].split(",")
    return []


def is_worker(argv: list[str]) -> bool:
    return argv[:4] == ["celery", "-A", "orders_project", "worker"]


def is_beat(argv: list[str]) -> bool:
    return argv[:4] == ["celery", "-A", "orders_project", "beat"]


def env_file(path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --- Kubernetes --------------------------------------------------------------------------


@functools.cache
def kustomize(target: str) -> subprocess.CompletedProcess:
    assert KUBECTL, (
        "REQUIRE_KUBECTL is set but kubectl is missing (apt-get install kubernetes-client)"
    )
    return subprocess.run(
        [KUBECTL, "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def build(target: str) -> list[dict]:
    result = kustomize(target)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    return doc


def workloads(docs: list[dict]) -> list[dict]:
    return of_kind(docs, "Deployment") + of_kind(docs, "Job")


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec["containers"] + spec.get("initContainers", [])


def argv(container: dict) -> list[str]:
    return container.get("command", []) + container.get("args", [])


def config_map(docs: list[dict]) -> dict:
    (generated,) = [
        doc
        for doc in of_kind(docs, "ConfigMap")
        if doc["metadata"]["name"].startswith("orders-config-")
    ]
    return generated


def selects(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def test_the_kustomizations_stay_buildable_by_kustomize_v2():
    """CI may have a newer kubectl than Debian's: this checks by reading what
    a build with the newer one would not notice."""
    files = sorted(K8S.rglob("kustomization.yaml"))
    assert [str(path.relative_to(K8S)) for path in files] == [
        "base/kustomization.yaml",
        "overlays/production/kustomization.yaml",
    ]
    for path in files:
        kustomization = yaml.safe_load(path.read_text())
        assert set(kustomization) <= KUSTOMIZE_V2_FIELDS, path
        for entry in kustomization.get("resources", []):
            assert (path.parent / entry).is_file(), f"{path}: a directory goes in bases: {entry}"
        for entry in kustomization.get("bases", []):
            assert (path.parent / entry).is_dir(), entry
        for entry in kustomization.get("patchesStrategicMerge", []):
            assert (path.parent / entry).is_file(), entry


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_kustomize_builds_without_warnings(target):
    result = kustomize(target)
    assert result.returncode == 0, result.stderr
    unexpected = [
        line
        for line in result.stderr.splitlines()
        if line.strip()
        and not ((notice := DEPRECATION.match(line)) and notice[1] in KEPT_FOR_KUSTOMIZE_V2)
    ]
    assert not unexpected, "\n".join(unexpected)


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_every_document_is_valid_for_the_kubernetes_api(target):
    docs = build(target)
    assert docs
    for doc in docs:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = "/".join(str(part) for part in error.path)
                pytest.fail(
                    f"{doc['kind']} {doc['metadata']['name']} ({version}) {where}: {error.message}"
                )


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_one_worker_deployment_per_celery_queue_consuming_exactly_it(target):
    docs = build(target)
    by_queue: dict[str, list[str]] = {}
    for deployment in of_kind(docs, "Deployment"):
        for container in containers(deployment):
            if is_worker(argv(container)):
                queues = consumed_queues(argv(container))
                assert len(queues) == 1, (deployment["metadata"]["name"], queues)
                by_queue.setdefault(queues[0], []).append(deployment["metadata"]["name"])
                assert {"name": "CELERY_METRICS_PORT", "value": "9540"} in container["env"]
                assert container["livenessProbe"]
    assert set(by_queue) == celery_queues()
    assert all(len(names) == 1 for names in by_queue.values()), by_queue


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_beat_runs_once_and_nothing_scales_it(target):
    docs = build(target)
    beats = [
        deployment
        for deployment in of_kind(docs, "Deployment")
        if any(is_beat(argv(container)) for container in containers(deployment))
    ]
    assert len(beats) == 1
    (beat,) = beats
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    for container in containers(beat):
        assert "CELERY_METRICS_PORT" not in {entry["name"] for entry in container.get("env", [])}
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert beat["metadata"]["name"] not in targets
    assert targets == {"web"}


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_the_web_has_probes_a_service_an_hpa_and_a_pdb(target):
    docs = build(target)
    web = named(docs, "Deployment", "web")
    (container,) = containers(web)
    assert argv(container)[:2] == ["gunicorn", "orders_project.wsgi:application"]
    assert {"name": "http", "containerPort": 8000} in container["ports"]
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    # Django answers 400 to a Host it does not allow: the probes name one it does.
    allowed = config_map(docs)["data"]["ALLOWED_HOSTS"].split(",")
    for probe in probes.values():
        assert probe["port"] == "http"
        (host,) = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
        assert host in allowed
    # The HPA owns the count: none in the Deployment, or every apply resets it.
    assert "replicas" not in web["spec"]

    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    service = named(docs, "Service", "web")
    assert selects(service["spec"]["selector"], pod_labels)
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]

    (pdb,) = of_kind(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    others = [w for w in workloads(docs) if w is not web]
    for other in others:
        assert not selects(
            pdb["spec"]["selector"]["matchLabels"], other["spec"]["template"]["metadata"]["labels"]
        )


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_requests_and_limits_and_runs_locked_down(target):
    docs = build(target)
    for workload in workloads(docs):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        # The image's USER is a name: runAsNonRoot needs the number.
        assert spec["securityContext"]["runAsUser"] == 1000
        assert spec["automountServiceAccountToken"] is False
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, where
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            # Where the app writes: /tmp (spooled uploads, exports) and, for
            # gunicorn and the prefork pool, /dev/shm (metrics, heartbeats).
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where  # noqa: S108
            command = argv(container)
            if command[0] == "gunicorn" or is_worker(command):
                shm = volumes[mounts["/dev/shm"]]  # noqa: S108
                assert shm["emptyDir"]["medium"] == "Memory", where


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_settings_come_from_the_config_map_and_the_secret(target):
    docs = build(target)
    generated = config_map(docs)
    assert not of_kind(docs, "Secret"), "secrets are created out of band, never built from the repo"
    assert generated["metadata"]["labels"]["app.kubernetes.io/component"] == "config"
    for key in generated["data"]:
        assert key in NOT_SECRET or not SECRET_LIKE.search(key), f"{key} belongs in the Secret"
    for workload in workloads(docs):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert container["envFrom"] == [
                {"configMapRef": {"name": generated["metadata"]["name"]}},
                {"secretRef": {"name": SECRET_NAME}},
            ], where
            for entry in container.get("env", []):
                if entry["name"] == "POD_IP":  # the pod's own address, from the downward API
                    assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
                elif "valueFrom" in entry:
                    assert entry["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, where
                else:
                    assert not SECRET_LIKE.search(entry["name"]) or not entry["value"], where


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_migrations_run_as_a_job_of_the_same_image(target):
    docs = build(target)
    (job,) = of_kind(docs, "Job")
    (container,) = containers(job)
    assert argv(container) == ["python", "manage.py", "migrate", "--noinput"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] <= 2
    # deploy/k8s/README.md applies it first, by this label.
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    images = {c["image"] for w in workloads(docs) for c in containers(w)}
    assert images == {container["image"]}


@needs_kubectl
@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_in_the_manifests_is_one_the_app_reads(target):
    docs = build(target)
    names = set(config_map(docs)["data"])
    referenced_keys = set()
    for workload in workloads(docs):
        for container in containers(workload):
            for entry in container.get("env", []):
                names.add(entry["name"])
                if "secretKeyRef" in entry.get("valueFrom", {}):
                    referenced_keys.add(entry["valueFrom"]["secretKeyRef"]["key"])
    if target == PRODUCTION:
        # The Secret's keys become variables too (envFrom), but for those only
        # handed to a variable of another name (secretKeyRef).
        names |= set(env_file(SECRET_EXAMPLE)) - referenced_keys
        assert referenced_keys <= set(env_file(SECRET_EXAMPLE))
    unknown = names - variables_the_app_reads()
    assert not unknown, f"not read by settings.py or gunicorn.conf.py: {sorted(unknown)}"


@needs_kubectl
def test_the_production_overlay_pins_its_image_namespace_and_database_routing():
    docs = build(PRODUCTION)
    kustomization = yaml.safe_load((K8S / PRODUCTION / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["newTag"] and image["newTag"] != "latest"
    for workload in workloads(docs):
        for container in containers(workload):
            assert container["image"] == f"{image['newName']}:{image['newTag']}"
            assert container["imagePullPolicy"] == "IfNotPresent"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization["namespace"], doc["metadata"]

    # deploy/k8s/README.md applies config and migrations first, then the
    # rest, selecting on this label.
    components = {
        (doc["kind"], doc["metadata"]["name"]): doc["metadata"]["labels"].get(COMPONENT)
        for doc in docs
    }
    first = {key for key, component in components.items() if component in {"config", "migrate"}}
    assert {kind for kind, _ in first} == {"ConfigMap", "Job"}
    assert all(components[key] for key in components if key[0] != "Namespace"), components

    config = config_map(docs)["data"]
    secrets = env_file(SECRET_EXAMPLE)
    # PgBouncer in transaction mode, not psycopg's pool on top of it.
    assert config["DATABASE_POOLER"] == "pgbouncer"
    assert config.get("DATABASE_POOL", "0") in {"0", ""}
    assert "pgbouncer" in urlsplit(secrets["DATABASE_URL"]).hostname
    replicas = secrets["DATABASE_REPLICA_URLS"].split(",")
    assert replicas and all(urlsplit(url).scheme == "postgres" for url in replicas)
    assert int(config["REPLICA_PIN_SECONDS"]) > 0 and int(config["REPLICA_MAX_LAG_SECONDS"]) > 0
    # Migrations go to the primary itself, past the pooler.
    (job,) = of_kind(docs, "Job")
    (container,) = containers(job)
    env = {entry["name"]: entry for entry in container["env"]}
    direct_key = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"]
    assert "pgbouncer" not in urlsplit(secrets[direct_key]).hostname
    assert env["DATABASE_POOLER"]["value"] == ""


# --- docker compose ----------------------------------------------------------------------


@functools.cache
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def services() -> dict[str, dict]:
    return compose()["services"]


def command(service: dict) -> list[str]:
    value = service.get("command", [])
    return shlex.split(value) if isinstance(value, str) else list(value)


def app_services() -> dict[str, dict]:
    """The services that run the app's image."""
    return {name: s for name, s in services().items() if s.get("image") == "orders:latest"}


def in_default_stack(service: dict) -> bool:
    return not service.get("profiles")


def test_compose_file_is_valid_for_the_compose_specification():
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose())
    ]
    assert not errors, "\n".join(errors)


def test_compose_runs_one_worker_per_queue_consuming_exactly_it():
    by_queue: dict[str, list[str]] = {}
    for name, service in services().items():
        if is_worker(command(service)):
            queues = consumed_queues(command(service))
            assert len(queues) == 1, (name, queues)
            by_queue.setdefault(queues[0], []).append(name)
            assert service["environment"]["CELERY_METRICS_PORT"] == "9540"
            assert "inspect ping" in " ".join(service["healthcheck"]["test"])
            assert in_default_stack(service), name
            # deploy/prometheus/prometheus.yml finds every worker by this name.
            assert "worker" in service["networks"]["default"]["aliases"]
    assert set(by_queue) == celery_queues()
    assert all(len(names) == 1 for names in by_queue.values()), by_queue
    assert by_queue == {queue: [f"worker-{queue}"] for queue in by_queue}


def test_compose_runs_beat_once():
    beats = {name: s for name, s in services().items() if is_beat(command(s))}
    assert list(beats) == ["beat"]
    beat = beats["beat"]
    # A fixed name: `docker compose up --scale beat=2` fails instead of
    # starting a second beat.
    assert beat["container_name"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in beat
    assert in_default_stack(beat)
    assert "CELERY_METRICS_PORT" not in beat["environment"]


def test_the_default_stack_needs_no_profile_service():
    default = {name for name, s in services().items() if in_default_stack(s)}
    assert default >= {"postgres", "redis", "proxy", "web", "beat"}
    for name in default:
        for dependency, condition in services()[name].get("depends_on", {}).items():
            if not in_default_stack(services()[dependency]):
                assert condition.get("required") is False, (name, dependency)


def data_volume(service: dict) -> str:
    (volume,) = [v for v in service["volumes"] if v.split(":")[1] == "/var/lib/postgresql/data"]
    return volume.split(":")[0]


def test_the_scale_profile_adds_a_replica_pgbouncer_and_a_second_web():
    scale = {name for name, s in services().items() if "scale" in s.get("profiles", [])}
    assert scale == {"postgres-replica", "pgbouncer", "web-2"}

    # The primary streams to `replicator`, allowed by its pg_hba.conf.
    primary = services()["postgres"]
    assert "wal_level=replica" in primary["command"]
    (hba_file,) = [
        arg.partition("=")[2] for arg in primary["command"] if arg.startswith("hba_file=")
    ]
    (hba_mount,) = [v for v in primary["volumes"] if v.endswith(f":{hba_file}:ro")]
    hba = (BASE_DIR / hba_mount.split(":")[0]).read_text()
    assert re.search(r"^host\s+replication\s+replicator\s+all\s+scram-sha-256$", hba, re.M)
    assert any(v.endswith(":/docker-entrypoint-initdb.d:ro") for v in primary["volumes"])

    replica = services()["postgres-replica"]
    assert replica["image"] == primary["image"]
    assert data_volume(replica) != data_volume(primary)
    script = (COMPOSE_DIR / "postgres" / "replica-entrypoint.sh").read_text()
    assert "pg_basebackup" in script and "--write-recovery-conf" in script
    assert "pg_is_in_recovery()" in " ".join(replica["healthcheck"]["test"])

    ini = configparser.ConfigParser(inline_comment_prefixes=None)
    ini.read_string((COMPOSE_DIR / "pgbouncer" / "pgbouncer.ini").read_text())
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert "host=postgres " in ini["databases"]["orders"] + " "

    # The app's processes go through PgBouncer and read from the replica
    # while those run (deploy/compose/entrypoint.sh).
    entrypoint = (COMPOSE_DIR / "entrypoint.sh").read_text()
    exported = dict(re.findall(r'^\s*export (\w+)="?([^"\n]*)"?$', entrypoint, re.M))
    assert exported["DATABASE_POOLER"] == "pgbouncer"
    pooled = urlsplit(exported["DATABASE_URL"])
    assert (pooled.hostname, pooled.port) == ("pgbouncer", int(ini["pgbouncer"]["listen_port"]))
    assert urlsplit(exported["DATABASE_REPLICA_URLS"]).hostname == "postgres-replica"
    for name, service in app_services().items():
        assert service["entrypoint"] == ["sh", "/usr/local/bin/orders-entrypoint.sh"], name

    # A second web behind the same proxy: it answers to `web` too, the name
    # deploy/nginx/nginx.conf's upstream resolves when nginx starts.
    web2 = services()["web-2"]
    assert command(web2)[0] == "gunicorn"  # web migrates, before it is healthy
    assert web2["depends_on"]["web"]["condition"] == "service_healthy"
    assert "web" in web2["networks"]["default"]["aliases"]
    proxy = services()["proxy"]
    assert proxy["depends_on"]["web-2"] == {"condition": "service_healthy", "required": False}
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    nginx = (BASE_DIR / "deploy" / "nginx" / "nginx.conf").read_text()
    assert re.search(r"upstream app \{\s*server web:8000;", nginx)


def test_every_variable_compose_gives_the_app_is_one_it_reads():
    names = set()
    for service in app_services().values():
        names |= set(service["environment"])
    entrypoint = (COMPOSE_DIR / "entrypoint.sh").read_text()
    names |= set(re.findall(r"^\s*(?:export|unset) (\w+)", entrypoint, re.M))
    unknown = names - variables_the_app_reads()
    assert not unknown, f"not read by settings.py or gunicorn.conf.py: {sorted(unknown)}"


def docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        version = subprocess.run([legacy, "version", "--short"], capture_output=True, text=True)
        if version.stdout.strip().lstrip("v").startswith("2."):
            return [legacy]
    return None


@pytest.mark.skipif(docker_compose() is None, reason="needs docker compose (v2)")
@pytest.mark.parametrize("profile", [[], ["--profile", "scale"]], ids=["default", "scale"])
def test_docker_compose_accepts_the_file(profile):
    result = subprocess.run(
        [*docker_compose(), *profile, "config", "--services"],
        cwd=BASE_DIR,
        env={**os.environ, "SECRET_KEY": "compose-config-check"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    started = set(result.stdout.split())
    expected = {name for name, s in services().items() if in_default_stack(s)}
    if profile:
        expected |= {name for name, s in services().items() if "scale" in s.get("profiles", [])}
    assert started == expected
