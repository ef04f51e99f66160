#!/usr/bin/env python3
"""Checks installer images from scripts/firmware-image against the provisioning file they were
built from (scripts/test runs it):

    check-images.py DEVICE.env MANIFEST.json...

Each manifest must describe its image truly (size, sha256), list the settings without the
password, and the image must carry the device's settings (site, device, broker password) in a form
its chip boots: a UF2 for the RP2040 whose blocks are well formed and whose first 256 bytes are a
second-stage boot loader with a valid CRC (what the ROM checks), or a merged ESP32-C3 image with
the boot loader, partition table and application where the ROM and boot loader look for them.
An image holding a password must not be readable by others."""

import hashlib
import json
import os
import stat
import struct
import sys


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
        image[addr - base:addr - base + len(flash[addr])] = flash[addr]
    return bytes(image)


def boot2_crc(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


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
        if m["format"] == "uf2":
            flash = uf2_flash(data, name)
            if boot2_crc(flash[:252]) != struct.unpack("<I", flash[252:256])[0]:
                fail(f"{name}: no valid boot2 at the start of flash: the ROM would not boot it")
        elif m["format"] == "esp-merged-bin":
            flash = data
            if flash[0] != 0xE9 or flash[0x8000:0x8002] != b"\xaa\x50" or flash[0x10000] != 0xE9:
                fail(f"{name}: no boot loader at 0x0, partition table at 0x8000 or app at 0x10000")
        else:
            fail(f"{name}: unknown format {m['format']}")
        # (Short constants such as the user name may be compiled into instructions, not stored.)
        for k in ("GRIDSENTRY_SITE", "GRIDSENTRY_DEVICE", "GRIDSENTRY_MQTT_PASSWORD"):
            if settings[k].encode() not in flash:
                fail(f"{name}: {k} is not in the image")
        print(f"check-images: {name}: {m['board']}, {len(data)} bytes, settings of "
              f"{settings['GRIDSENTRY_SITE']}/{settings['GRIDSENTRY_DEVICE']} inside, manifest true")


main()
