# Sourced by image/test-image.sh (KIND vm), with the first VM running
# after its power-loss reboot: steps 5 to 8, the jobs a contractor does
# without a shell, in the real admin console over SSH and its SFTP. The
# console runs in an 80x24 tmux terminal; each step waits for what the
# console must show and fails with the screen (and the serial log) when it
# does not. Uses from test-image.sh: work, img, start, size, disk, qpid,
# port, sshport, sftpport, boot, login, wait_answer, seed_disk, fail, step.

sshopts="-i $work/admin_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=20 -o LogLevel=ERROR"
pass="vm test backup passphrase"
hostname_new=clinic-vmtest

# tm: this test's own tmux server (its own socket: other tmux users on the
# machine are left alone), kept up by an idle session so that replacing
# the console's session never stops it.
tm() { tmux -L "$tses" "$@"; }
tm new-session -d -s keep -x 80 -y 24 "sleep 86400"
# console_open: the console over SSH in a fresh 80x24 terminal. When ssh
# ends, the terminal says so and stays, so its last screen can be read.
console_open() {
	tm kill-session -t con 2>/dev/null || true
	# shellcheck disable=SC2086
	tm new-session -d -s con -x 80 -y 24 "ssh -tt $sshopts -p $sshport admin@127.0.0.1; echo '[ssh ended]'; sleep 3600"
}
screen() { tm capture-pane -t con -p 2>/dev/null || true; }
# press KEY...: tmux key names (Enter, Tab, Escape, C-r, BSpace).
press() {
	for k; do
		tm send-keys -t con "$k"
		sleep 0.4
	done
}
# typ TEXT: literal text, as typed.
typ() {
	tm send-keys -t con -l "$1"
	sleep 0.4
}
console_fail() {
	echo "--- the console's screen:" >&2
	screen >&2
	echo "---" >&2
	fail "$*"
}
# wait_screen SECONDS TEXT WHAT: until the console shows TEXT.
wait_screen() {
	t0=$(date +%s)
	while [ $(( $(date +%s) - t0 )) -lt "$1" ]; do
		# An error the console shows in a form ("! …") ends the wait,
		# whatever else the screen says.
		if screen | grep -q '^! '; then
			console_fail "$3: the console refused it"
		fi
		if screen | grep -qF -- "$2"; then
			return 0
		fi
		sleep 1
	done
	console_fail "$3: \"$2\" not on the console within $1 s"
}
# console_wait SECONDS TEXT WHAT: opens the console until it shows TEXT
# (a console refused because the seed has not added the admin key yet,
# or one ended by the daemon restarting, is opened again).
console_wait() {
	t1=$(date +%s)
	while [ $(( $(date +%s) - t1 )) -lt "$1" ]; do
		kill -0 "$qpid" 2>/dev/null || fail "qemu exited"
		console_open
		t0=$(date +%s)
		while [ $(( $(date +%s) - t0 )) -lt 60 ]; do
			s=$(screen)
			case "$s" in
			*"$2"*) return 0 ;;
			*"[ssh ended]"*) break ;;
			esac
			sleep 1
		done
		sleep 3
	done
	console_fail "$3: \"$2\" not on the console within $1 s"
}
# ended_by_restart: when the daemon restarts itself (new replication
# settings, a restore), it ends the SSH session: open the console again.
ended_by_restart() {
	t0=$(date +%s)
	while [ $(( $(date +%s) - t0 )) -lt 30 ]; do
		if screen | grep -qF "[ssh ended]"; then
			console_wait 180 "Dashboard" "the console after the daemon's restart"
			return 0
		fi
		sleep 1
	done
}
# appliance_sftp BATCH: the console's SFTP (the admin key), a batch of
# commands; any failure fails the step.
appliance_sftp() {
	printf '%s\n' "$1" >"$work/sftp.batch"
	# shellcheck disable=SC2086
	sftp -b "$work/sftp.batch" -P "$sshport" $sshopts admin@127.0.0.1 >"$work/sftp.out" 2>&1 ||
		fail "SFTP to the appliance: $(cat "$work/sftp.out")"
}
# wait_ssh SECONDS: until the console's SSH port answers with a host key.
wait_ssh() {
	t0=$(date +%s)
	while [ $(( $(date +%s) - t0 )) -lt "$1" ]; do
		kill -0 "$qpid" 2>/dev/null || fail "qemu exited"
		if ssh-keyscan -p "$sshport" -T 10 127.0.0.1 2>/dev/null | grep -q ssh-ed25519; then
			return 0
		fi
		sleep 3
	done
	fail "the admin SSH console did not answer within $1 s"
}
# rootfile PATH: a file of the powered-off appliance's root file system
# (read out of its disk once; the root grew to the disk at first boot, so
# its size is the disk's partition table's now).
rootfile() {
	if [ ! -f "$work/after.img" ]; then
		rsize=$(sfdisk -d "$disk" 2>/dev/null | awk '/name="root"/ { sub(/,/, "", $6); print $6 }')
		[ -n "$rsize" ] || fail "no root partition on the first appliance's disk"
		dd if="$disk" of="$work/after.img" bs=512 skip="$start" count="$rsize" conv=sparse status=none
	fi
	debugfs -R "cat $1" "$work/after.img" 2>/dev/null
}

step "5. network, host name and NTP from the console (Dashboard n)"
t5=$(date +%s)
console_wait 180 "Dashboard" "the console over SSH"
press n
wait_screen 60 "Network, host name and time" "the network form"
wait_screen 10 "Changes are made by the system helper" "the image's system helper (clinicgate-system.path)"
# port: every Ethernet port; address: DHCP (qemu's); a DNS server; the
# new host name (ctrl+u clears the one shown); an NTP server.
press Tab
typ dhcp
press Tab Tab
typ 10.0.2.3
press Tab C-u
typ "$hostname_new"
press Tab
typ 10.0.2.2
press Enter
wait_screen 120 "done:" "the system helper's answer"
grep_done=$(screen | grep -F "done:" | head -1)
echo "ok: the console says: $(echo "$grep_done" | sed 's/^ *//')"
# The daemon (which serves this console) sees the new host name: the form
# shows it as the name now.
press n
wait_screen 60 "host name: $hostname_new" "the new host name, as the daemon sees it"
press Escape
echo "ok: host name $hostname_new in effect ($(( $(date +%s) - t5 )) s)"

step "6. off-box replication to an SFTP server, an encrypted backup, a change after it"
t6=$(date +%s)
# A throw-away OpenSSH SFTP server on the host (the guest reaches the
# host's loopback at 10.0.2.2), as root with a key of its own.
mkdir -p "$work/sftpd/replica" /run/sshd
chmod 700 "$work/sftpd/replica"
ssh-keygen -q -t ed25519 -N '' -f "$work/sftpd/host_key"
ssh-keygen -q -t ed25519 -N '' -C replica -f "$work/replica_key"
cp "$work/replica_key.pub" "$work/sftpd/authorized_keys"
cat >"$work/sftpd/sshd_config" <<EOF
ListenAddress 127.0.0.1:$sftpport
HostKey $work/sftpd/host_key
AuthorizedKeysFile $work/sftpd/authorized_keys
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
/usr/sbin/sshd -t -f "$work/sftpd/sshd_config" || fail "sshd refuses the SFTP server's config"
/usr/sbin/sshd -D -e -f "$work/sftpd/sshd_config" 2>"$work/sftpd/sshd.log" &
sftppid=$!
for i in $(seq 30); do
	ssh-keyscan -p "$sftpport" -T 2 127.0.0.1 2>/dev/null | grep -q ssh-ed25519 && break
	kill -0 "$sftppid" 2>/dev/null || fail "the SFTP server did not start: $(cat "$work/sftpd/sshd.log")"
	sleep 1
done
hostfp=$(ssh-keygen -lf "$work/sftpd/host_key.pub" | awk '{ print $2 }')
ln -sfn "$work/sftpd/replica" "$replink"
target="root@10.0.2.2:$sftpport/$replink"
# The replica's key goes in over the console's SFTP, as on site.
appliance_sftp "put $work/replica_key /incoming/replica_key"
press s
wait_screen 60 "Backups: an encrypted copy" "the Backups screen"
# No passphrase: the replication's settings.
press Enter Enter Enter
wait_screen 60 "Off-box replication: every change" "the replication form"
typ "$target"
press Tab
typ replica_key
press Tab Tab
typ "$hostfp"
press Enter
wait_screen 180 "Off-box replication set" "turning replication on (the appliance logs in to the SFTP server and writes there)"
press Space
# The daemon restarts itself to replicate, which ends this session.
ended_by_restart
# An encrypted backup: the passphrase twice.
press s
wait_screen 60 "Backups: an encrypted copy" "the Backups screen"
typ "$pass"
press Tab
typ "$pass"
press Tab Enter
wait_screen 300 "backup clinicgate-" "the encrypted backup"
appliance_sftp "ls -1 /backups"
name=$(grep -o 'clinicgate-[0-9-]*\.cgbackup' "$work/sftp.out" | tail -1)
[ -n "$name" ] || fail "no backup in /backups over SFTP: $(cat "$work/sftp.out")"
appliance_sftp "get /backups/$name $work/$name"
backup=$work/$name
[ -s "$backup" ] || fail "the backup $name was not fetched over SFTP: $(cat "$work/sftp.out")"
echo "ok: replicating to $target; backup $(basename "$backup") fetched over SFTP"
# The same backup onto the exFAT stick plugged in (no passphrase: the
# newest); checked on the stick's image after the power-off (step 7).
press s
wait_screen 60 "Backups: an encrypted copy" "the Backups screen"
press Tab Tab
typ yes
press Enter
wait_screen 120 "copied to the USB stick" "copying the backup to the exFAT stick"
# A change after the backup: a user only the replica will hold.
press Tab Tab
wait_screen 60 "a:add" "the Users pane"
press a
wait_screen 60 "Add a user" "the add-user form"
typ bob.vmtest
press Enter
typ staff
press Enter
typ "bob after the backup"
press Enter
wait_screen 120 "user bob.vmtest added" "adding a user"
answer=$(wait_answer 120 bob.vmtest "bob after the backup")
echo "ok: bob.vmtest added after the backup: $answer"
# Litestream copies each commit within a second or so; the console says
# when the replica last caught up.
sleep 15
press BTab BTab
press s
wait_screen 60 "up to date" "the replica catching up"
press Escape
[ -n "$(ls -A "$work/sftpd/replica")" ] || fail "nothing in the replica on the SFTP server"
echo "ok: the replica is up to date ($(du -sk "$work/sftpd/replica" | cut -f1) KiB on the server, $(( $(date +%s) - t6 )) s)"

step "7. power off from the console (Dashboard p); the helper's files on the disk"
t7=$(date +%s)
press p
wait_screen 60 "Reboot, power off or factory reset" "the power form"
typ poweroff
press Tab
typ poweroff
press Enter
t0=$(date +%s)
while kill -0 "$qpid" 2>/dev/null; do
	[ $(( $(date +%s) - t0 )) -lt 240 ] || console_fail "the appliance did not power off within 240 s"
	sleep 2
done
wait "$qpid" 2>/dev/null || true
qpid=""
got=$(rootfile /etc/hostname)
[ "$got" = "$hostname_new" ] || fail "/etc/hostname on the disk is \"$got\", want $hostname_new"
rootfile /etc/hosts | grep -q "^127\.0\.1\.1[[:space:]].*$hostname_new" || fail "/etc/hosts lacks 127.0.1.1 $hostname_new: $(rootfile /etc/hosts)"
rootfile /etc/systemd/timesyncd.conf.d/10-clinicgate.conf | grep -qx 'NTP=10.0.2.2' ||
	fail "timesyncd's file is not NTP=10.0.2.2: $(rootfile /etc/systemd/timesyncd.conf.d/10-clinicgate.conf)"
net=$(rootfile /etc/systemd/network/10-clinicgate.network)
echo "$net" | grep -qx 'DHCP=yes' && echo "$net" | grep -qx 'DNS=10.0.2.3' || fail "the network file is not DHCP with DNS 10.0.2.3: $net"
echo "ok: powered off in $(( $(date +%s) - t7 )) s; on its disk: /etc/hostname $hostname_new, /etc/hosts, NTP=10.0.2.2, DHCP=yes DNS=10.0.2.3"
# The exFAT stick was unmounted cleanly and holds the backup, byte for byte.
fsck.exfat -n "$exstick" >"$work/fsck.out" 2>&1 || fail "the exFAT stick is not clean after the copy: $(cat "$work/fsck.out")"
python3 -c 'import sys; sys.exit(0 if open(sys.argv[2], "rb").read() in open(sys.argv[1], "rb").read() else 1)' "$exstick" "$backup" ||
	fail "the exFAT stick does not hold the backup $(basename "$backup")"
echo "ok: the exFAT stick holds $(basename "$backup") and checks clean"

step "8. a second fresh image restored from the replica in the first-boot wizard (ctrl+r), the backup on a FAT USB stick"
t8=$(date +%s)
rm -f "$work/after.img" "$work/disk.raw"
seed_disk "$work/seed-fresh.sh" "$work/disk-b.raw"
disk=$work/disk-b.raw
# The backup comes on a FAT32 stick, as a contractor carries it: the
# system helper mounts it (read-only) and copies it into incoming/.
stick=$work/stick.img
rm -f "$stick"
mkfs.vfat -F 32 -C -n CGSTICK "$stick" $((64 * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -i "$stick" "$backup" ::/
usb="-device qemu-xhci,id=xhci -drive if=none,id=stick,format=raw,file=$stick -device usb-storage,bus=xhci.0,drive=stick,removable=on"
boot
usb=""
wait_ssh 420
console_wait 240 "Welcome to clinicgate" "the first-boot wizard of a fresh appliance"
# Nothing of the first appliance is here yet: its client and alice.
[ "$(login)" != Access-Accept ] || fail "the fresh appliance let alice of the first one in before any restore"
appliance_sftp "put $work/replica_key /incoming/replica_key"
press C-r
wait_screen 60 "restore a replaced appliance" "the wizard's restore form"
typ usb
press Tab
typ "$pass"
press Tab
typ "$target"
press Tab
typ replica_key
press Tab
typ "$hostfp"
press Enter
wait_screen 300 "was checked" "the restore from the replica"
press Space
answer=$(wait_answer 420 bob.vmtest "bob after the backup")
echo "ok: the restored appliance lets in bob.vmtest, added after the backup: $answer"
answer=$(wait_answer 60)
echo "ok: and alice: $answer"
console_wait 180 "Dashboard" "the restored appliance's console"
press v
wait_screen 180 "Audit chain verified" "the audit verification (v)"
screen | grep -q "no problems" || console_fail "the audit verification found problems"
echo "ok: $(screen | grep -o 'Audit chain verified:[^.]*' | head -1) ($(( $(date +%s) - t8 )) s)"
