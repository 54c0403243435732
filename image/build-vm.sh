#!/bin/sh
# Builds the x86-64 VM image: a minimal Debian 12 with clinicgate's .deb,
# booting with UEFI (systemd-boot), DHCP on the first Ethernet port, the
# console on tty1 and the admin SSH console on 2222. Nothing secret is in
# the image: SSH host key, LDAP certificate, appliance key and machine-id
# are made at first boot.
#
# Usage (as root): image/build-vm.sh DEB OUTDIR
# Needs: mmdebstrap, systemd-boot-efi, dosfstools, mtools, fdisk, e2fsprogs,
# qemu-utils, zstd (make image-deps installs them). No loop devices or
# mounts: the file systems are filled from directories.
set -eu

deb=$1
out=$2
[ "$(id -u)" -eq 0 ] || { echo "build-vm.sh: run as root (mmdebstrap --mode=root)" >&2; exit 1; }
[ -f "$deb" ] || { echo "build-vm.sh: no package $deb (make deb)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d /var/tmp/clinicgate-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
cache=${CLINICGATE_APT_CACHE:-/var/cache/clinicgate-image-apt}
mkdir -p "$cache"

# The image uses the building machine's Debian sources (deb822), so its
# security updates come from where this machine gets its own.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list

start=$(date +%s)
mmdebstrap --mode=root --variant=apt --arch=amd64 \
	--include=systemd,systemd-sysv,systemd-resolved,systemd-timesyncd,udev,dbus,kmod,linux-image-amd64,initramfs-tools,ca-certificates,unattended-upgrades,tzdata,iproute2,less,fdisk,e2fsprogs \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt=force-confold --dpkgopt=force-confdef \
	--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"; cp -a $cache/. \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
	--customize-hook="cp -a \"\$1/var/cache/apt/archives/\"*.deb $cache/ 2>/dev/null || true" \
	--customize-hook="copy-in $deb /tmp" \
	--customize-hook="chroot \"\$1\" sh -c 'dpkg -i /tmp/$(basename "$deb") && rm /tmp/$(basename "$deb")'" \
	--customize-hook="sync-in $here/vm-root /" \
	--customize-hook="$here/customize.sh \"\$1\"" \
	--customize-hook="chroot \"\$1\" systemctl enable clinicgate-growroot.service >/dev/null 2>&1" \
	--customize-hook="$here/prune-modules.sh \"\$1\"" \
	bookworm "$root" "$sources"
echo "root file system built in $(( $(date +%s) - start )) s"

# Kernel and initrd go to the EFI system partition, where systemd-boot
# loads them (a hook in the image copies new ones after kernel updates).
kver=$(ls "$root"/lib/modules | sort -V | tail -1)
esp=$work/esp.img
rootimg=$work/root.img
root_uuid=$(cat /proc/sys/kernel/random/uuid)
esp_uuid=$(cat /proc/sys/kernel/random/uuid)
printf 'PARTUUID=%s / ext4 errors=remount-ro 0 1\nPARTUUID=%s /boot/efi vfat umask=0077,nofail 0 2\n' "$root_uuid" "$esp_uuid" >"$root/etc/fstab"
mkdir -p "$root/boot/efi"
cat >"$root/etc/kernel/cmdline" <<EOF
root=PARTUUID=$root_uuid ro quiet console=tty1 console=ttyS0,115200
EOF

mkfs.vfat -C -n CGESP "$esp" $((128 * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$esp" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/boot/vmlinuz-$kver" ::/vmlinuz
mcopy -i "$esp" "$root/boot/initrd.img-$kver" ::/initrd.img
printf 'default clinicgate.conf\ntimeout 0\neditor no\n' >"$work/loader.conf"
printf 'title clinicgate\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$(cat "$root/etc/kernel/cmdline")" >"$work/clinicgate.conf"
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/clinicgate.conf" ::/loader/entries/clinicgate.conf

used=$(du -sm "$root" | cut -f1)
# Room beside the system: the store grows, and the console's SFTP takes
# uploads (a backup to restore, an update) into incoming/ only while the
# last 512 MiB stay free. With 512 MiB here a fresh VM refused every
# upload (make image-test found it); 1.5 GiB leaves about 900 MiB for
# them. The raw image is sparse, and the qcow2 and zstd files compress it.
rootmb=$((used + 1536))
mkfs.ext4 -q -L clinicgate-root -d "$root" "$rootimg" "${rootmb}M"

# GPT: the ESP at 1 MiB, the root file system after it.
raw=$out/clinicgate-vm-amd64.raw
rm -f "$raw"
total=$((1 + 128 + rootmb + 1))
truncate -s "${total}M" "$raw"
sfdisk -q "$raw" <<EOF
label: gpt
start=1MiB, size=128MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_uuid, name=esp
start=129MiB, size=${rootmb}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_uuid, name=root
EOF
dd if="$esp" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$rootimg" of="$raw" bs=1M seek=129 conv=notrunc,sparse status=none

qemu-img convert -f raw -O qcow2 -c "$raw" "$out/clinicgate-vm-amd64.qcow2"
zstd -q -f -T0 -19 "$raw" -o "$out/clinicgate-vm-amd64.raw.zst"
echo "built in $(( $(date +%s) - start )) s:"
ls -l "$out"/clinicgate-vm-amd64.*
