#!/bin/sh
# Boots an appliance image under qemu and checks it as a clinic would meet
# it. KIND vm: the x86-64 image with UEFI firmware (software emulation
# unless /dev/kvm exists). KIND pi: the Raspberry Pi SD-card image: its
# layout (MBR, firmware partition with config.txt, cmdline.txt, the Pi 3/4
# boot files and device trees) is inspected, and its arm64 root file system
# is booted under qemu-system-aarch64 -M virt with the image's own kernel
# and initrd (this does not exercise the Pi's firmware). Both:
#   1. the image holds nothing that must be unique per install (machine-id,
#      keys, a password, a database);
#   2. it boots, the service starts, and a real RADIUS Access-Request from
#      radclient to the forwarded port is answered;
#   3. the admin SSH console answers with a host key made at first boot;
#   4. power loss: the VM is killed while logins are being written; on the
#      next boot the service starts, the store opens and the audit chain
#      verifies.
# KIND vm then does, without a shell, what a contractor does on site, in
# the real admin console over SSH (OpenSSH's ssh in an 80x24 tmux
# terminal, its screen read back) and over the console's SFTP
# (image/test-console.sh):
#   5. sets the network (DHCP, a DNS server), the host name and an NTP
#      server (Dashboard n); the system helper's answer is on screen and
#      the daemon sees the new host name;
#   6. turns on off-box replication (Dashboard s) to a throw-away OpenSSH
#      SFTP server on the host (10.0.2.2 from the guest), makes an
#      encrypted backup and fetches it over SFTP, then adds a user (Users
#      a) that only the replica holds;
#   7. powers the appliance off (Dashboard p, typed twice); the files the
#      helper wrote are read from its disk;
#   8. boots a SECOND fresh copy of the image, uploads the backup and the
#      replica's key over SFTP, restores from the replica in the
#      first-boot wizard (ctrl+r); the user added after the backup logs in
#      over RADIUS and the console's audit verification (v) passes.
# The test's own RADIUS client and user, and its admin SSH key, are added
# by a drop-in written into a copy of the image (the image itself has
# none: the wizard adds them). The second copy gets the admin key only, so
# its console opens on the first-boot wizard.
#
# Usage (as root): image/test-image.sh vm dist/image/clinicgate-vm-amd64.raw
#                  image/test-image.sh pi dist/image/clinicgate-pi-arm64.img
set -eu
kind=$1
img=$2
[ "$(id -u)" -eq 0 ] || { echo "test-image.sh: run as root" >&2; exit 1; }
qemu=qemu-system-x86_64
[ "$kind" = pi ] && qemu=qemu-system-aarch64
tools="$qemu radclient debugfs ssh-keyscan sfdisk mcopy mkfs.vfat"
[ "$kind" = vm ] && tools="$tools tmux ssh sftp ssh-keygen /usr/sbin/sshd mkfs.exfat fsck.exfat python3"
for t in $tools; do
	command -v $t >/dev/null || { echo "test-image.sh: $t is missing (make image-deps)" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/clinicgate-vmtest.XXXXXX)
qpid=""
sftppid=""
tses=cgvm$$
# The replica's directory as the guest names it (test-console.sh): short,
# so the console's replication line fits 80 columns whole.
replink=/tmp/cgreplica.$$
cleanup() {
	rm -f "$replink"
	[ -z "$qpid" ] || kill -9 "$qpid" 2>/dev/null || true
	[ -z "$sftppid" ] || kill "$sftppid" 2>/dev/null || true
	tmux -L "$tses" kill-server 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
# fail: the reason, the serial log's end, and the whole log kept beside
# the work directory (which is removed).
fail() {
	echo "FAIL: $*" >&2
	if [ -f "$work/serial.log" ]; then
		tail -40 "$work/serial.log" >&2
		cp "$work/serial.log" "$work.serial.log" && echo "(the whole serial log: $work.serial.log)" >&2
	fi
	exit 1
}
step() { echo "== $* ($(date -u +%H:%M:%S))"; }

# The partitions' places in the image, from its partition table.
part() { sfdisk -d "$img" | grep "^$img$1 " | sed -n "s/.*$2= *\([^,]*\).*/\1/p"; }
if [ "$kind" = pi ]; then
	echo "== 0. SD-card layout"
	sfdisk -d "$img" | grep -q '^label: dos' || fail "the Pi image's partition table is not MBR"
	[ "$(part 1 type)" = c ] && [ "$(part 1 start)" = 8192 ] && [ "$(part 1 size)" = 524288 ] ||
		fail "partition 1 is not a 256 MiB FAT32 (type c) at 4 MiB: $(sfdisk -d "$img" | grep "^${img}1")"
	[ "$(part 2 type)" = 83 ] || fail "partition 2 is not Linux (83)"
	dd if="$img" of="$work/fw.img" bs=512 skip=8192 count=524288 status=none
	export MTOOLS_SKIP_CHECK=1
	files=$(mdir -b -i "$work/fw.img" :: | sed 's|^::/||')
	# Debian boots the mainline kernel (upstream_kernel=1), so the device
	# trees carry mainline names (bcm2837-… for the Pi 3).
	for f in config.txt cmdline.txt bootcode.bin start.elf fixup.dat start4.elf fixup4.dat bcm2711-rpi-4-b.dtb bcm2711-rpi-400.dtb bcm2711-rpi-cm4-io.dtb bcm2837-rpi-3-b.dtb bcm2837-rpi-3-b-plus.dtb bcm2837-rpi-zero-2-w.dtb; do
		echo "$files" | grep -qx "$f" || fail "the firmware partition lacks $f"
	done
	echo "$files" | grep -q '^vmlinuz' && echo "$files" | grep -q '^initrd.img' || fail "no kernel or initrd on the firmware partition"
	mcopy -i "$work/fw.img" ::/cmdline.txt "$work/cmdline.txt"
	mcopy -i "$work/fw.img" ::/config.txt "$work/config.txt"
	grep -q 'root=LABEL=RASPIROOT' "$work/cmdline.txt" || fail "cmdline.txt does not name the root: $(cat "$work/cmdline.txt")"
	grep -q '^arm_64bit=1' "$work/config.txt" || fail "config.txt does not boot 64-bit"
	grep -q '^upstream_kernel=1' "$work/config.txt" || fail "config.txt does not select the mainline device trees"
	mcopy -i "$work/fw.img" "::/$(echo "$files" | grep '^vmlinuz' | head -1)" "$work/vmlinuz"
	mcopy -i "$work/fw.img" "::/$(echo "$files" | grep '^initrd.img' | head -1)" "$work/initrd.img"
	echo "ok: MBR, 256 MiB FAT32 at 4 MiB with the Pi 3/4/400 firmware and device trees, config.txt (64-bit), cmdline.txt (root=LABEL=RASPIROOT)"
	start=$(part 2 start)
	size=$(part 2 size)
else
	start=$(sfdisk -d "$img" | awk '/name="root"/ { sub(/,/, "", $4); print $4 }')
	size=$(sfdisk -d "$img" | awk '/name="root"/ { sub(/,/, "", $6); print $6 }')
fi
[ -n "$start" ] && [ -n "$size" ] || fail "no root partition in $img"
dd if="$img" of="$work/root.img" bs=512 skip="$start" count="$size" conv=sparse status=none

step "1. nothing unique per install in the image"
dbg() { debugfs -R "$1" "$work/root.img" 2>/dev/null; }
[ -z "$(dbg 'cat /etc/machine-id')" ] || fail "/etc/machine-id is not empty"
dbg 'ls -p /var/lib/clinicgate' | grep -Ev '^/[0-9]+/[0-9]+/[0-9]+/[0-9]+/\.{1,2}/' | grep -q . && fail "/var/lib/clinicgate is not empty"
dbg 'cat /etc/shadow' | awk -F: '$2 !~ /^[!*]/ { print; bad=1 } END { exit bad }' || fail "an account has a password"
mkdir -p "$work/dump"
dbg "rdump /etc $work/dump" >/dev/null
dbg "rdump /var $work/dump" >/dev/null
dbg "rdump /root $work/dump" >/dev/null
keys=$(grep -rl -- '-----BEGIN [A-Z ]*PRIVATE KEY' "$work/dump" 2>/dev/null || true)
[ -z "$keys" ] || fail "private keys in the image: $keys"
ls "$work/dump/etc/ssh/" 2>/dev/null | grep -q host_ && fail "SSH host keys in the image"
echo "ok: empty machine-id, no data, no passwords, no private keys"

# The test copy: a drop-in that seeds a RADIUS client for the host (10.0.2.2
# in qemu's user network) and a user once the service is up, and prints
# the audit check on the console.
secret=vm-test-secret-0123456789
cat >"$work/seed.sh" <<EOF
#!/bin/sh
export CLINICGATE_DATA=/var/lib/clinicgate
clinicgate client list | grep -q '^qemu-host ' || echo '$secret' | clinicgate client add qemu-host --address 10.0.2.2 --mfa off --secret-stdin
clinicgate user list | grep -q '^alice ' || echo 'vm test password' | clinicgate user add alice --password-stdin
clinicgate admin list-keys | grep -q '^image-test ' || clinicgate admin add-key image-test </etc/clinicgate/test-admin.pub
echo "CLINICGATE-AUDIT: \$(clinicgate audit verify 2>&1 | tail -1)"
echo "CLINICGATE-ROOT-MB: \$(df -m / | awk 'NR == 2 { print \$2 }')"
EOF
cat >"$work/seed.conf" <<'EOF'
[Service]
StandardOutput=journal+console
ExecStartPost=-/bin/sh /etc/clinicgate/test-seed.sh
EOF
printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' >"$work/helper.conf"
# The console's admin key (the contractor's laptop key).
ssh-keygen -q -t ed25519 -N '' -C image-test -f "$work/admin_key"
# A second fresh copy (step 8) gets only the admin key: no client, no
# user, so its console opens on the first-boot wizard.
cat >"$work/seed-fresh.sh" <<'EOF'
#!/bin/sh
export CLINICGATE_DATA=/var/lib/clinicgate
clinicgate admin list-keys | grep -q '^image-test ' || clinicgate admin add-key image-test </etc/clinicgate/test-admin.pub
EOF
# seed_disk SEED DISK: a copy of the image with the seed drop-in.
seed_disk() {
	cp --sparse=always "$work/root.img" "$work/seed-root.img"
	debugfs -w -R "mkdir /etc/systemd/system/clinicgate.service.d" "$work/seed-root.img" >/dev/null 2>&1
	debugfs -w -R "write $work/seed.conf /etc/systemd/system/clinicgate.service.d/test-seed.conf" "$work/seed-root.img" >/dev/null 2>&1
	debugfs -w -R "write $1 /etc/clinicgate/test-seed.sh" "$work/seed-root.img" >/dev/null 2>&1
	debugfs -w -R "write $work/admin_key.pub /etc/clinicgate/test-admin.pub" "$work/seed-root.img" >/dev/null 2>&1
	# The system helper's words go to the serial log too, to show why a
	# console job failed.
	debugfs -w -R "mkdir /etc/systemd/system/clinicgate-system.service.d" "$work/seed-root.img" >/dev/null 2>&1
	debugfs -w -R "write $work/helper.conf /etc/systemd/system/clinicgate-system.service.d/test-console.conf" "$work/seed-root.img" >/dev/null 2>&1
	cp --sparse=always "$img" "$2"
	dd if="$work/seed-root.img" of="$2" bs=512 seek="$start" conv=notrunc,sparse status=none
	rm -f "$work/seed-root.img"
	# A card (or disk) larger than the image: the root grows to fill it.
	truncate -s +1G "$2"
}
seed_disk "$work/seed.sh" "$work/disk.raw"
disk=$work/disk.raw

port=$((20000 + $$ % 10000))
sshport=$((port + 1))
accel="-accel tcg -cpu qemu64"
[ -w /dev/kvm ] && [ "$kind" = vm ] && accel="-accel kvm -cpu host"
sftpport=$((port + 2))
nic="user,model=virtio-net-pci,hostfwd=udp:127.0.0.1:$port-:1812,hostfwd=tcp:127.0.0.1:$sshport-:2222"
usb=""
if [ "$kind" = vm ]; then
	# The first VM has an empty exFAT stick plugged in (the format of
	# sticks over 32 GB): the console copies a backup onto it in step 6.
	exstick=$work/stick-exfat.img
	truncate -s 64M "$exstick"
	mkfs.exfat -L CGEXFAT "$exstick" >/dev/null
	usb="-device qemu-xhci,id=xhci -drive if=none,id=stick,format=raw,file=$exstick -device usb-storage,bus=xhci.0,drive=stick,removable=on"
fi
boot() {
	: >"$work/serial.log"
	if [ "$kind" = pi ]; then
		qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2 -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
			-append "root=LABEL=RASPIROOT ro console=ttyAMA0" -drive file="$disk",format=raw,if=virtio \
			-nic "$nic" -display none -serial file:"$work/serial.log" -monitor none &
	else
		# shellcheck disable=SC2086
		# $usb: a USB stick plugged in, when a step sets it.
		# shellcheck disable=SC2086
		qemu-system-x86_64 -machine q35 $accel -m 1024 -smp 2 -bios /usr/share/ovmf/OVMF.fd \
			-drive file="$disk",format=raw,if=virtio -nic "$nic" $usb \
			-display none -serial file:"$work/serial.log" -monitor none &
	fi
	qpid=$!
}
# login [USER PASSWORD]: a RADIUS Access-Request; prints the answer.
login() {
	printf 'User-Name = "%s", User-Password = "%s", Message-Authenticator = 0x00\n' "${1:-alice}" "${2:-vm test password}" |
		radclient -r 1 -t 3 "127.0.0.1:$port" auth "$secret" 2>/dev/null | grep -o "Received Access-[A-Za-z]*" | cut -d" " -f2 | head -1
}
# wait_answer SECONDS [USER PASSWORD]: until that login is accepted.
wait_answer() {
	t0=$(date +%s)
	while [ $(( $(date +%s) - t0 )) -lt "$1" ]; do
		kill -0 "$qpid" 2>/dev/null || fail "qemu exited"
		a=$(login "${2:-alice}" "${3:-vm test password}" || true)
		# Until the test's seed has added the user, an answer is a reject.
		if [ "$a" = Access-Accept ]; then
			echo "$a after $(( $(date +%s) - t0 )) s"
			return 0
		fi
		sleep 2
	done
	fail "no Access-Accept for ${2:-alice} within $1 s (last answer: ${a:-none})"
}

step "2. boot and answer RADIUS"
boot
answer=$(wait_answer 420)
echo "first boot: $answer"
case "$answer" in Access-Accept*) ;; *) fail "got $answer, want Access-Accept" ;; esac

# The seed prints its checks after adding the user: wait for them.
for i in $(seq 60); do
	grep -aq 'CLINICGATE-ROOT-MB:' "$work/serial.log" && break
	sleep 1
done
rootmb=$(grep -a 'CLINICGATE-ROOT-MB:' "$work/serial.log" | tail -1 | sed 's/.*CLINICGATE-ROOT-MB: *//' | tr -dc '0-9')
imgmb=$(( size / 2048 ))
[ -n "$rootmb" ] && [ "$rootmb" -gt $((imgmb + 700)) ] || fail "the root file system did not grow to the disk: ${rootmb:-?} MB, partition ${imgmb} MB, 1 GB added"
echo "ok: the root grew from $imgmb MB to $rootmb MB (1 GB added to the disk)"

step "3. the admin SSH console answers with a host key made at first boot"
hk=""
for try in 1 2 3 4 5; do
	hk=$(ssh-keyscan -p "$sshport" -T 20 127.0.0.1 2>/dev/null | grep ssh-ed25519 || true)
	[ -z "$hk" ] || break
	sleep 3
done
[ -n "$hk" ] || fail "no SSH host key on port 2222"
echo "ok: $(echo "$hk" | awk '{ print $2 }') key"

step "4. power loss while logins are written"
i=0
while [ $i -lt 20 ]; do login >/dev/null & i=$((i + 1)); done
sleep 1
kill -9 "$qpid"
wait "$qpid" 2>/dev/null || true
qpid=""
boot
answer=$(wait_answer 420)
echo "after power loss: $answer"
case "$answer" in Access-Accept*) ;; *) fail "after the power loss: got $answer, want Access-Accept" ;; esac
# The seed prints the audit check after its own commands: wait for it.
for i in $(seq 90); do
	grep -aq 'CLINICGATE-AUDIT:' "$work/serial.log" && break
	sleep 1
done
grep -a 'CLINICGATE-AUDIT:' "$work/serial.log" | tail -1 | grep -q 'chain unbroken' || fail "the audit chain did not verify after the power loss: $(grep -a CLINICGATE-AUDIT "$work/serial.log" | tail -1)"
echo "ok: $(grep -a 'CLINICGATE-AUDIT:' "$work/serial.log" | tail -1 | tr -d '\r')"
if [ "$kind" = vm ]; then
	. "$(dirname "$0")/test-console.sh"
fi
kill "$qpid" 2>/dev/null || true
echo "PASS"
