#!/bin/sh
# mmdebstrap customize hook for the appliance images: $1 is the new root.
# Enables what the appliance runs, and removes everything that must be
# unique to each install (made again at first boot).
set -eu
r=$1
chroot "$r" systemctl enable systemd-networkd systemd-resolved systemd-timesyncd clinicgate.service >/dev/null 2>&1
# The console's system screens (network, time, reboot, factory reset) act
# through this root helper on the images only (appliance/hostcfg).
chroot "$r" systemctl enable clinicgate-system.path >/dev/null 2>&1
ln -sf /run/systemd/resolve/stub-resolv.conf "$r/etc/resolv.conf"
# The console on the screen: the terminal UI on tty1 (from the .deb).
mkdir -p "$r/etc/systemd/system/getty@tty1.service.d"
cp "$r/usr/share/clinicgate/getty@tty1.service.d/clinicgate-console.conf" "$r/etc/systemd/system/getty@tty1.service.d/"
# No passwords: root is locked; admins reach the console on the screen or
# with a registered SSH key on port 2222.
chroot "$r" usermod -p '!' root
# Unique per install: made at first boot.
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id" "$r/etc/ssh/ssh_host_"* "$r/var/lib/systemd/random-seed"
rm -rf "$r/var/lib/clinicgate/"*
rm -f "$r/var/cache/apt/archives/"*.deb "$r/var/log/"*.log
