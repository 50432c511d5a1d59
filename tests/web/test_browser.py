"""The views in a real browser: headless Chromium opens the live page and sees frames advance,
comes in with the printed token, and gets a mask back from the upload page."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest


def picture(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def figures(browser) -> dict:
    return browser.evaluate(
        "({shown: polypView.shown, counter: Number(document.getElementById('shown').textContent),"
        " g2g: polypView.g2gMedian(), ended: polypView.ended, status: document.getElementById('status').textContent,"
        " polyp: document.getElementById('polyp').textContent, e2e: document.getElementById('e2e').textContent})"
    )


def test_the_live_page_shows_frames_that_advance(browser, live_run, tmp_path, monkeypatch):
    """On 127.0.0.2 (not 127.0.0.1): the printed URL carries a generated token, the page comes in
    with it (a cookie from then on, the socket included) and the video plays."""
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    stats = tmp_path / "stats.json"
    run = live_run("--serve", "127.0.0.2:0", "--max-frames", "450", "--stats-json", str(stats))
    assert "?token=" in run.url
    browser.goto(run.url.split("?")[0])
    assert "needs its access token" in browser.evaluate("document.body.textContent")
    browser.goto(run.url)
    assert browser.evaluate("location.search") == "", "the token left the address bar"
    assert browser.wait_for("window.polypView && polypView.shown >= 5", 60), figures(browser)
    first_shot, first = browser.screenshot(), figures(browser)
    assert browser.wait_for(f"polypView.shown >= {first['shown'] + 10}", 60)
    second_shot, second = browser.screenshot(), figures(browser)
    assert second["counter"] >= first["counter"] + 10, "the page's own frame counter grows"
    a, b = picture(first_shot), picture(second_shot)
    assert a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) > 1.0, (
        "the picture moved"
    )
    assert second["status"] == "live" and second["polyp"] in ("POLYP", "no polyp")
    assert second["e2e"].endswith(" ms") and 0 < second["g2g"] < 10_000
    assert browser.wait_for("polypView.ended", 120), "the page is told when the run ends"
    assert run.finish() == 0, "".join(run.lines)
    document = json.loads(stats.read_text())
    live = document["live_view"]
    assert document["frames_in"] == 450 and live["frames_offered"] == document["frames_processed"]
    assert live["viewers_max"] >= 1 and 0 < live["frames_encoded"] <= live["frames_offered"]
    assert run.url.split("?token=")[1] not in stats.read_text()


def test_the_upload_page_returns_a_mask_and_the_dice(browser, upload_server, polyp_image, tmp_path):
    served = upload_server()
    image = polyp_image(tmp_path / "polyp.png")
    browser.goto(served.url)
    browser.set_files("#file", image)
    browser.evaluate("document.getElementById('send').click()")
    assert browser.wait_for("document.body.dataset.answered === '1'", 60), browser.evaluate(
        "document.getElementById('message').textContent"
    )
    assert browser.wait_for("document.getElementById('mask-out').naturalWidth > 0", 30), "the mask is shown"
    # the mask as the page shows it, read back through a canvas (PNG: every pixel as it came)
    shown = browser.evaluate(
        "(() => { const img = document.getElementById('mask-out'); const c = document.createElement('canvas');"
        " c.width = img.naturalWidth; c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0);"
        " return c.toDataURL('image/png').split(',')[1]; })()"
    )
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(shown), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (480, 640) and set(np.unique(mask)) == {0, 255}
    mask_png = cv2.imencode(".png", mask)[1].tobytes()
    assert browser.evaluate("document.getElementById('mask-link').download") == "polyp_mask.png"
    # the page's own mask back as the truth: every pixel agrees, so the Dice it shows is 1
    truth = tmp_path / "truth.png"
    truth.write_bytes(mask_png)
    browser.set_files("#mask", truth)
    browser.evaluate("document.getElementById('send').click()")
    assert browser.wait_for("document.body.dataset.answered === '2'", 60)
    summary = browser.evaluate("document.getElementById('summary').textContent")
    assert "Dice 1.000, IoU 1.000 against the uploaded mask" in summary and "polyp found" in summary
    shot = tmp_path / "upload.png"
    shot.write_bytes(browser.screenshot())
    assert float(picture(shot.read_bytes()).std()) > 15


def test_a_bad_upload_shows_its_message(browser, upload_server, tmp_path):
    served = upload_server()
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all\n")
    browser.goto(served.url)
    browser.set_files("#file", text)
    browser.evaluate("document.getElementById('send').click()")
    assert browser.wait_for("!document.getElementById('message').hidden", 60)
    message = browser.evaluate("document.getElementById('message').textContent")
    assert message.startswith("not an image or a video clip: upload an image")
    assert browser.evaluate("document.getElementById('result').hidden") is True


@pytest.mark.parametrize("path", ["/", "/static/live.js"])
def test_no_token_in_the_browser_is_a_refusal(browser, upload_server, path, monkeypatch):
    monkeypatch.delenv("POLYP_RT_TOKEN", raising=False)
    served = upload_server(listen="127.0.0.2:0")
    browser.goto(served.base + path)
    assert "needs its access token" in browser.evaluate("document.body.textContent")
