"""A flow saved with the platform's REST API component, run unchanged by real workers.

``demo/flows/platform-rest.json`` uses ``httpRequestAxios`` with a platform-held credential
(``secretId``) and ``$moment()`` in its URL. Two replicas share the credential; its access
token expires between rounds; the platform (the local one, refreshing at the demo
provider) must be asked once per expiry, and no ``updateKeys`` leaves the workers.
"""

from __future__ import annotations

import json

from runtime.devtools.credentials_file import CredentialsFile
from runtime.devtools.localplatform.flow import load_flow
from runtime.devtools.localplatform.secrets import FileSecrets
from tests.helpers import ROOT

ROUNDS = 2
PER_ROUND = 4


def test_a_platform_flow_with_a_secret_and_moment_runs_unchanged(
    step, platform_api, demo_api, tmp_path
):
    store = CredentialsFile(tmp_path / "credentials.json")
    store.path.write_text(json.dumps({"demo": demo_api.credential()}))
    secrets = FileSecrets(store)
    platform_api.state.secrets = secrets
    flow = load_flow(ROOT / "demo" / "flows" / "platform-rest.json", {"DEMO_API_URL": demo_api.url})
    harness = step(flow.function, component=ROOT, config=flow.config)
    workers = [harness.start_worker(), harness.start_worker()]
    secret_reads = [c for c in platform_api.state.calls if c[1].endswith("/secrets/demo")]
    assert [method for method, _ in secret_reads] == ["GET", "GET"]  # read at start, not
    # on the first message's event loop; once per worker

    sent = 0
    for round_ in range(1, ROUNDS + 1):
        demo_api.book.expire_all()
        for _ in range(PER_ROUND):
            sent += 1
            harness.send({"id": f"r-{sent}", "at": f"2026-12-0{round_}T23:30:00-02:00"})
        outputs = harness.take("message", PER_ROUND, timeout=30)
        assert len(outputs) == PER_ROUND
        for output in outputs:
            body = output["payload"]["body"]
            assert body["statusCode"] == 200
            echoed = body["responseBody"]
            # 23:30 at UTC-2 is the next day in UTC.
            assert echoed["query"]["day"] == f"2026-12-0{round_ + 1}"
            assert echoed["headers"]["X-Requested-By"] == "platform-flow"
        assert secrets.refreshes["demo"] == round_, "one refresh per expiry, for both replicas"

    print(
        json.dumps({"sent": sent, "data": sent, "platform refreshes": secrets.refreshes["demo"],
                    "expiries": ROUNDS, "invalid_grant": demo_api.stats()["invalid_grants"]})
    )  # fmt: skip
    assert harness.empty("error") and harness.empty("keys") and harness.empty("rebound")
    assert demo_api.stats()["invalid_grants"] == 0
    assert harness.queued() == 0
    logs = json.dumps([w.logs for w in workers])
    assert demo_api.credential()["clientSecret"] not in logs
    assert json.loads(store.path.read_text())["demo"]["accessToken"] not in logs
