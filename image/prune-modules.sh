#!/bin/sh
# mmdebstrap customize hook for the VM image: $1 is the new root. Removes
# kernel modules no virtual machine of a clinic's hypervisor needs (GPUs
# other than the virtual ones, sound, cameras and TV cards, Wi-Fi,
# Bluetooth, InfiniBand, industrial sensors, staging drivers), about half
# of the modules, so that the compressed image stays small. Kept: every
# Ethernet and storage driver, USB and input, and the virtual GPUs of
# Hyper-V, VMware, VirtualBox and QEMU. A kernel update installs a full
# set again (the image grows, nothing breaks).
set -eu
r=$1
for m in "$r"/lib/modules/*; do
	k=$m/kernel
	rm -rf "$k/sound" "$k/drivers/media" "$k/drivers/net/wireless" "$k/drivers/infiniband" \
		"$k/drivers/staging" "$k/drivers/bluetooth" "$k/drivers/iio" "$k/drivers/isdn" \
		"$k/net/wireless" "$k/net/mac80211" "$k/net/bluetooth" \
		"$k/drivers/gpu/drm/amd" "$k/drivers/gpu/drm/radeon" "$k/drivers/gpu/drm/nouveau" \
		"$k/drivers/gpu/drm/i915" "$k/drivers/gpu/drm/gma500" "$k/drivers/gpu/drm/mgag200" \
		"$k/drivers/gpu/drm/ast"
	chroot "$r" depmod "$(basename "$m")"
done
chroot "$r" update-initramfs -u -k all >/dev/null
