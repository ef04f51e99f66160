#!/usr/bin/env python3
"""Checks installer images from scripts/firmware-image against the provisioning file they were
built from (scripts/test runs it):

    check-images.py DEVICE.env MANIFEST.json...

Each manifest must describe its image truly (size, sha256), list the settings without the
password, and the image must carry the device's settings (all of them, in its settings sector) in a form
its chip boots: a UF2 for the RP2040 whose blocks are well formed and whose first 256 bytes are a
second-stage boot loader with a valid CRC (what the ROM checks), or a merged ESP32-C3 image with
the boot loader, partition table and application where the ROM and boot loader look for them.
An ESP32-C3 image's partition table must hold both app slots (ota_0, ota_1), ESP-IDF's OTA data
and the update's progress record (gs_ota), with the app in ota_0; esptool's image-info (PyPI
esptool, path in $ESPTOOL) must find the boot loader's and the app's checksums and the app's
hash valid. The update image (NAME.app.bin) must be what the manifest says and what the installer
image carries. An image holding a password must not be readable by others."""

import hashlib
import json
import os
import stat
import struct
import subprocess
import sys
import tempfile
import zlib


def fail(msg):
    sys.exit(f"check-images: {msg}")


def uf2_flash(data, name):
    if not data or len(data) % 512:
        fail(f"{name}: not whole 512-byte UF2 blocks")
    flash, count = {}, None
    for n in range(len(data) // 512):
        b = data[n * 512:(n + 1) * 512]
        m0, m1, flags, addr, size, no, total, family = struct.unpack("<8I", b[:32])
        if (m0, m1, struct.unpack("<I", b[508:])[0]) != (0x0A324655, 0x9E5D5157, 0x0AB16F30):
            fail(f"{name}: block {n}: bad magic")
        if not flags & 0x2000 or family != 0xE48BFF56:
            fail(f"{name}: block {n}: not marked for the RP2040 (family 0x{family:x})")
        if no != n or (count is not None and total != count):
            fail(f"{name}: block {n}: numbered {no} of {total}")
        count = total
        flash[addr] = b[32:32 + size]
    if count != len(data) // 512:
        fail(f"{name}: {len(data) // 512} blocks, header says {count}")
    base = min(flash)
    if base != 0x10000000:
        fail(f"{name}: starts at 0x{base:x}, not at the start of flash")
    image = bytearray()
    for addr in sorted(flash):
        at = addr - base
        image.extend(b"\xff" * max(0, at - len(image)))  # a gap (boot loader → ACTIVE) is erased flash
        image[at:at + len(flash[addr])] = flash[addr]
    return bytes(image)


def boot2_crc(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def partitions(flash, name):
    """The partition table at 0x8000: {label: (type, subtype, offset, size)}."""
    table = {}
    for at in range(0x8000, 0x8C00, 32):
        e = flash[at:at + 32]
        if e[:2] != b"\xaa\x50":
            break
        kind, sub, offset, size = struct.unpack("<BBII", e[2:12])
        table[e[12:28].rstrip(b"\0").decode()] = (kind, sub, offset, size)
    return table


def esptool_valid(data, name, what, want_hash):
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        out = subprocess.run([os.environ.get("ESPTOOL", "esptool"), "--chip", "esp32c3", "image-info", f.name],
                             capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "Checksum:" not in text or "(invalid)" in text:
        fail(f"{name}: esptool image-info finds the {what} broken:\n{text}")
    if want_hash and "Validation hash:" not in text:
        fail(f"{name}: the {what} carries no SHA-256 (the boot loader could not check it)")


def check_esp(flash, app, name):
    t = partitions(flash, name)
    want = {"otadata": (1, 0), "ota_0": (0, 0x10), "ota_1": (0, 0x11), "gs_ota": (1, 0x06), "gs_set": (1, 0x06)}
    for label, (kind, sub) in want.items():
        if t.get(label, (None, None))[:2] != (kind, sub):
            fail(f"{name}: the partition table has no {label} of type {kind}/{sub:#x}: {t}")
    if t["otadata"][3] != 0x2000 or t["gs_ota"][3] < 0x1000 or t["gs_set"][3] < 0x1000:
        fail(f"{name}: otadata must be 8 KB, gs_ota and gs_set at least 4 KB")
    slots = [t["ota_0"], t["ota_1"]]
    if any(s[2] % 0x10000 for s in slots) or slots[0][3] != slots[1][3]:
        fail(f"{name}: app slots must start on 64 KB and be the same size")
    spans = sorted((p[2], p[2] + p[3], label) for label, p in t.items())
    for (a0, a1, la), (b0, _b1, lb) in zip(spans, spans[1:]):
        if a1 > b0:
            fail(f"{name}: {la} overlaps {lb}")
    if len(app) > slots[0][3]:
        fail(f"{name}: the app ({len(app)} bytes) is larger than a slot ({slots[0][3]})")
    if flash[slots[0][2]:slots[0][2] + len(app)] != app:
        fail(f"{name}: ota_0 does not hold the update image's app")
    esptool_valid(flash[:0x8000], name, "boot loader", False)
    esptool_valid(app, name, "app", True)
    return t


def settings_sector(sector, name):
    """The settings text of a settings sector (firmware/core/src/settings.rs) as a dict."""
    magic, length, crc = sector[:4], *struct.unpack("<II", sector[4:12])
    text = sector[12:12 + length]
    if magic != b"GSST" or length > 4096 - 12 or zlib.crc32(text) != crc:
        fail(f"{name}: no whole settings sector (magic, length or CRC)")
    return dict(line.split("=", 1) for line in text.decode().splitlines() if line)


def main():
    env_file, manifests = sys.argv[1], sys.argv[2:]
    settings = {}
    for line in open(env_file):
        if line.strip() and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            settings[k] = v
    password = settings["GRIDSENTRY_MQTT_PASSWORD"]
    if not manifests:
        fail("no manifests")
    for path in manifests:
        text = open(path).read()
        m = json.loads(text)
        image_path = os.path.join(os.path.dirname(path), m["image"])
        data = open(image_path, "rb").read()
        name = m["image"]
        if len(data) != m["bytes"] or hashlib.sha256(data).hexdigest() != m["sha256"]:
            fail(f"{name}: size or sha256 differ from the manifest")
        if password in text:
            fail(f"{path}: the manifest shows the broker password")
        if stat.S_IMODE(os.stat(image_path).st_mode) & 0o077:
            fail(f"{name}: holds a password but others may read it")
        for k, v in settings.items():
            want = "(set, not shown)" if k == "GRIDSENTRY_MQTT_PASSWORD" else v
            if m["settings"].get(k) != want:
                fail(f"{path}: settings[{k}] is {m['settings'].get(k)!r}, not {want!r}")
        app_path = os.path.join(os.path.dirname(path), m.get("update_image", ""))
        if "update_image" not in m or not os.path.isfile(app_path):
            fail(f"{name}: the manifest names no update image, or it is missing")
        app = open(app_path, "rb").read()
        if len(app) != m["update_bytes"] or hashlib.sha256(app).hexdigest() != m["update_sha256"]:
            fail(f"{m['update_image']}: size or sha256 differ from the manifest")
        if m["format"] == "uf2":
            flash = uf2_flash(data, name)
            if boot2_crc(flash[:252]) != struct.unpack("<I", flash[252:256])[0]:
                fail(f"{name}: no valid boot2 at the start of flash: the ROM would not boot it")
            if flash[0xA000:0xA000 + len(app)] != app:
                fail(f"{name}: ACTIVE (0x1000A000) does not hold the update image's app")
            sector = flash[0x7000:0x8000]
            if flash[0x8000:0xA000] != b"\xff" * 0x2000:
                fail(f"{name}: the boot state and progress record (0x8000-0xA000) are not written blank")
        elif m["format"] == "esp-merged-bin":
            flash = data
            if flash[0] != 0xE9 or flash[0x8000:0x8002] != b"\xaa\x50" or flash[0x10000] != 0xE9:
                fail(f"{name}: no boot loader at 0x0, partition table at 0x8000 or app at 0x10000")
            table = check_esp(flash, app, name)
            for label in ("otadata", "gs_ota"):
                at, size = table[label][2], table[label][3]
                if flash[at:at + size] != b"\xff" * size:
                    fail(f"{name}: {label} is not written blank: a reflashed box would keep its old update state")
            sector = flash[table["gs_set"][2]:table["gs_set"][2] + 4096]
        else:
            fail(f"{name}: unknown format {m['format']}")
        # The device's settings in its sector; none of them in the update image, which every
        # device of the board gets.
        stored = settings_sector(sector, name)
        for k, v in settings.items():
            if stored.get(k) != v:
                fail(f"{name}: the settings sector has {k}={stored.get(k)!r}, not the provisioned value")
        for k in ("GRIDSENTRY_SITE", "GRIDSENTRY_DEVICE", "GRIDSENTRY_MQTT_PASSWORD"):
            if settings[k].encode() in app:
                fail(f"{m['update_image']}: carries {k}: it would give every device this one's")
        print(f"check-images: {name}: {m['board']}, {len(data)} bytes, settings of "
              f"{settings['GRIDSENTRY_SITE']}/{settings['GRIDSENTRY_DEVICE']} inside, manifest true")


main()
