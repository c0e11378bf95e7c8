"""Does this ROS 2 install enforce SROS2 (DDS Security)? A measurement, not a deployment tool.

    python -m robomd_ur5e.sros2_probe

Makes a throw-away keystore with the ``openssl`` command (a CA; the enclave ``/robomd_probe`` with
a certificate signed by it; a governance that refuses unauthenticated participants and encrypts
discovery and data; permissions granting the enclave every topic; both S/MIME-signed by the CA, the
layout ``ros2 security create_enclave`` writes), then runs a talker in that enclave with
``ROS_SECURITY_ENABLE=true ROS_SECURITY_STRATEGY=Enforce`` and a listener without security, both on
localhost in a free ROS domain. It prints one line and exits with:

- 0 ``enforced``: the secured talker ran and the unsecured listener received nothing in
  :data:`LISTEN_S` seconds;
- 1 ``NOT enforced``: the unsecured listener received the secured talker's messages;
- 3 ``unsupported``: the middleware refused to create a secured node (the error is printed).

docs/real_robot.md (Access) quotes its result for the ROS Jazzy wheels of this workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from robomd_diagnoser.ros.bringup import SIM_DOMAIN_ID
from robomd_diagnoser.ros.network import claim_free_domain

ENCLAVE = "/robomd_probe"
#: Seconds the unsecured listener listens (the talker publishes at 10 Hz until stopped).
LISTEN_S = 5.0
_GOVERNANCE = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd">
  <domain_access_rules>
    <domain_rule>
      <domains><id_range><min>0</min><max>232</max></id_range></domains>
      <allow_unauthenticated_participants>false</allow_unauthenticated_participants>
      <enable_join_access_control>true</enable_join_access_control>
      <discovery_protection_kind>ENCRYPT</discovery_protection_kind>
      <liveliness_protection_kind>ENCRYPT</liveliness_protection_kind>
      <rtps_protection_kind>SIGN</rtps_protection_kind>
      <topic_access_rules>
        <topic_rule>
          <topic_expression>*</topic_expression>
          <enable_discovery_protection>true</enable_discovery_protection>
          <enable_liveliness_protection>true</enable_liveliness_protection>
          <enable_read_access_control>true</enable_read_access_control>
          <enable_write_access_control>true</enable_write_access_control>
          <metadata_protection_kind>ENCRYPT</metadata_protection_kind>
          <data_protection_kind>ENCRYPT</data_protection_kind>
        </topic_rule>
      </topic_access_rules>
    </domain_rule>
  </domain_access_rules>
</dds>
"""
_PERMISSIONS = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xsi:noNamespaceSchemaLocation="http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd">
  <permissions>
    <grant name="{enclave}">
      <subject_name>CN=robomd_probe</subject_name>
      <validity><not_before>2020-01-01T00:00:00</not_before>
                <not_after>2100-01-01T00:00:00</not_after></validity>
      <allow_rule>
        <domains><id_range><min>0</min><max>232</max></id_range></domains>
        <publish><topics><topic>*</topic></topics></publish>
        <subscribe><topics><topic>*</topic></topics></subscribe>
      </allow_rule>
      <default>DENY</default>
    </grant>
  </permissions>
</dds>
"""
_TALKER = f"""
import sys, time, rclpy
from std_msgs.msg import String
try:
    rclpy.init(args=["--ros-args", "--enclave", "{ENCLAVE}"])
    node = rclpy.create_node("probe_talker")
except Exception as exc:
    print("unsupported:", str(exc).replace(chr(10), " "), flush=True)
    sys.exit(3)
pub = node.create_publisher(String, "probe_chatter", 10)
print("up", flush=True)
while True:
    pub.publish(String(data="probe"))
    time.sleep(0.1)
"""
_LISTENER = f"""
import time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("probe_listener")
got = []
node.create_subscription(String, "probe_chatter", lambda m: got.append(m.data), 10)
end = time.monotonic() + {LISTEN_S}
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.05)
print(len(got), flush=True)
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_keystore(root: Path) -> Path:
    """Write the probe's keystore under ``root``; the keystore directory.

    :raises FileNotFoundError: without the ``openssl`` command.
    :raises subprocess.CalledProcessError: if openssl fails.
    """
    ks = root / "keystore"
    enclave = ks / "enclaves" / ENCLAVE.strip("/")
    enclave.mkdir(parents=True)
    (ks / "private").mkdir()
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "private/ca.key.pem",
             cwd=ks)
    _openssl("req", "-x509", "-new", "-key", "private/ca.key.pem", "-subj", "/CN=robomd_probe_ca",
             "-days", "2", "-out", "ca.cert.pem", cwd=ks)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem", cwd=enclave)
    _openssl("req", "-new", "-key", "key.pem", "-subj", "/CN=robomd_probe", "-out", "req.csr",
             cwd=enclave)
    _openssl("x509", "-req", "-in", "req.csr", "-CA", "../../ca.cert.pem", "-CAkey",
             "../../private/ca.key.pem", "-CAcreateserial", "-days", "2", "-out", "cert.pem",
             cwd=enclave)
    for name in ("identity_ca.cert.pem", "permissions_ca.cert.pem"):
        (enclave / name).write_bytes((ks / "ca.cert.pem").read_bytes())
    (enclave / "governance.xml").write_text(_GOVERNANCE)
    (enclave / "permissions.xml").write_text(_PERMISSIONS.format(enclave=ENCLAVE))
    for doc in ("governance", "permissions"):
        _openssl("smime", "-sign", "-in", f"{doc}.xml", "-text", "-out", f"{doc}.p7s", "-signer",
                 "../../ca.cert.pem", "-inkey", "../../private/ca.key.pem", cwd=enclave)
    return ks


def probe(enforce: bool = True) -> tuple[int, str]:
    """Run the measurement; (exit code, the line to print) as in the module doc.

    :param enforce: False runs the talker with the keystore but ``ROS_SECURITY_ENABLE=false``:
        the control experiment, which must come out NOT enforced.
    """
    domain, reservation = claim_free_domain(SIM_DOMAIN_ID)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROS_SECURITY_")}
    base.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    with tempfile.TemporaryDirectory(prefix="robomd-sros2-") as tmp:
        keystore = make_keystore(Path(tmp))
        secure = {**base, "ROS_SECURITY_KEYSTORE": str(keystore),
                  "ROS_SECURITY_ENABLE": "true" if enforce else "false",
                  "ROS_SECURITY_STRATEGY": "Enforce"}
        reservation.close()  # the nodes take the domain now
        talker = subprocess.Popen([sys.executable, "-c", _TALKER], env=secure, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        first = talker.stdout.readline().strip()
        if first != "up":
            talker.wait()
            return 3, first or f"unsupported: the secured talker exited with {talker.returncode}"
        try:
            heard = subprocess.run([sys.executable, "-c", _LISTENER], env=base, text=True,
                                   capture_output=True, check=True, timeout=60).stdout.strip()
        finally:
            talker.kill()
            talker.wait()
    if int(heard) == 0:
        return 0, f"enforced: the unsecured listener received nothing in {LISTEN_S:.0f} s"
    return 1, (f"NOT enforced: the unsecured listener received {heard} messages in "
               f"{LISTEN_S:.0f} s")


def main() -> None:
    """Entry point: print the result and exit with its code."""
    code, line = probe()
    print(line)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
