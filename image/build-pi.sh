#!/bin/sh
# Builds the Raspberry Pi SD-card image: Debian 12 arm64 with Debian's own
# kernel (linux-image-arm64) and Pi firmware (raspi-firmware), for the Pi 4
# and 400, the Pi 3/3+, CM4 and Zero 2 W (bookworm's 6.1 kernel has no Pi 5
# device tree). MBR layout: a 256 MiB FAT32 firmware partition (RASPIFIRM,
# config.txt, cmdline.txt, kernel, initrd, device trees) at 4 MiB, then the
# ext4 root (RASPIROOT), which grows to the card at first boot. The arm64
# root file system is assembled with qemu-user binfmt emulation.
#
# Usage (as root): image/build-pi.sh DEB OUTDIR
set -eu

deb=$1
out=$2
[ "$(id -u)" -eq 0 ] || { echo "build-pi.sh: run as root" >&2; exit 1; }
[ -f "$deb" ] || { echo "build-pi.sh: no package $deb (make deb)" >&2; exit 1; }
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "build-pi.sh: no qemu-aarch64 binfmt (install qemu-user-static binfmt-support)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d /var/tmp/clinicgate-pi.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
cache=${CLINICGATE_APT_CACHE:-/var/cache/clinicgate-image-apt}-arm64
mkdir -p "$cache"
sources=$work/debian.sources
# The building machine's Debian sources, with non-free-firmware added
# (the Pi's boot firmware lives there).
sed 's/^Components: .*/Components: main non-free-firmware/' /etc/apt/sources.list.d/debian.sources >"$sources" 2>/dev/null ||
	{ echo "build-pi.sh: needs /etc/apt/sources.list.d/debian.sources" >&2; exit 1; }

start=$(date +%s)
mmdebstrap --mode=root --variant=apt --arch=arm64 \
	--include=systemd,systemd-sysv,systemd-resolved,systemd-timesyncd,udev,dbus,kmod,linux-image-arm64,initramfs-tools,raspi-firmware,ca-certificates,unattended-upgrades,tzdata,iproute2,less,fdisk,e2fsprogs \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt=force-confold --dpkgopt=force-confdef \
	--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\"; cp -a $cache/. \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
	--setup-hook="sync-in $here/pi-root /" \
	--customize-hook="cp -a \"\$1/var/cache/apt/archives/\"*.deb $cache/ 2>/dev/null || true" \
	--customize-hook="copy-in $deb /tmp" \
	--customize-hook="chroot \"\$1\" sh -c 'dpkg -i /tmp/$(basename "$deb") && rm /tmp/$(basename "$deb")'" \
	--customize-hook="sync-in $here/vm-root /" \
	--customize-hook="$here/customize.sh \"\$1\"" \
	--customize-hook="chroot \"\$1\" systemctl enable clinicgate-growroot.service >/dev/null 2>&1" \
	bookworm "$root" "$sources"
echo "root file system built in $(( $(date +%s) - start )) s"

printf 'LABEL=RASPIROOT / ext4 errors=remount-ro 0 1\nLABEL=RASPIFIRM /boot/firmware vfat umask=0077,nofail 0 2\n' >"$root/etc/fstab"

# The firmware partition: what raspi-firmware put in /boot/firmware.
fw=$work/fw.img
mkfs.vfat -F 32 -C -n RASPIFIRM "$fw" $((256 * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
(cd "$root/boot/firmware" && for f in *; do mcopy -s -i "$fw" "$f" ::/; done)
rm -rf "$root/boot/firmware/"*

used=$(du -sm "$root" | cut -f1)
rootmb=$((used + 384))
rootimg=$work/root.img
mkfs.ext4 -q -L RASPIROOT -d "$root" "$rootimg" "${rootmb}M"

img=$out/clinicgate-pi-arm64.img
rm -f "$img"
truncate -s "$((4 + 256 + rootmb))M" "$img"
sfdisk -q "$img" <<EOF
label: dos
start=4MiB, size=256MiB, type=c
start=260MiB, size=${rootmb}MiB, type=83
EOF
dd if="$fw" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$rootimg" of="$img" bs=1M seek=260 conv=notrunc,sparse status=none
zstd -q -f -T0 -19 "$img" -o "$img.zst"
echo "built in $(( $(date +%s) - start )) s:"
ls -l "$out"/clinicgate-pi-arm64.*
