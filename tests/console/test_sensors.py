"""The sensors page: the running service's inputs, failures and checkpoints."""

from __future__ import annotations

from collectors.base import Batch
from govsoc.service import Service


class Broken:
    name = "broken"

    def batches(self):
        raise OSError("<script>alert(1)</script> interface down")
        yield Batch()  # pragma: no cover

    def stop(self) -> None:
        pass


def test_sensors_page_shows_inputs_failures_and_checkpoints(app, config, store, login):
    store.set_checkpoint("tail:/var/log/auth.log", {"inode": 42, "offset": 1234})
    service = Service(config, store, inputs=[("capture:ens224", "capture", Broken)],
                      serve_console=False)
    service.inputs[0].status.state = "backing_off"
    service.inputs[0].status.restarts = 3
    service.inputs[0].status.last_error = "OSError: <script>alert(1)</script> interface down"
    app.extensions["govsoc_service"] = service
    page = login("root").get("/admin/sensors")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "capture:ens224" in html and "backing_off" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "tail:/var/log/auth.log" in html and "1234" in html


def test_sensors_page_without_the_service(app, login):
    page = login("root").get("/admin/sensors")
    assert page.status_code == 200
    assert "govsoc run" in page.get_data(as_text=True)
