#!/bin/bash
# PID 1 of the lab guest. The kernel hands unknown cmdline key=value pairs to
# init as environment variables: that is how labout arrives; the caller's
# directory is in a file there.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck disable=SC2154 # labout is set by the kernel, from its command line
labcwd="$(cat "$labout/cwd")"
export HOME=/root TCPAO_LAB=1 LANG=C.UTF-8

mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# Keep namespace state, sockets and scratch files off the shared host root.
# The caller's directory and the run's output directory stay the host's even
# when they lie under /tmp or /run: each is held aside and moved over the tmpfs.
held=()
for shared_dir in "$labcwd" "$labout"; do
  case "$shared_dir" in
    /tmp|/tmp/*|/run|/run/*)
      holder="/dev/.tcpao-lab-held-${#held[@]}"
      mkdir -p "$holder" && mount --bind "$shared_dir" "$holder" && held+=("$holder=$shared_dir") ;;
  esac
done
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
for pair in "${held[@]}"; do
  mkdir -p "${pair#*=}" && mount --move "${pair%%=*}" "${pair#*=}"
done
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
stty -F /dev/console -onlcr 2>/dev/null
ip link set lo up
hostname kernel-lab

status=254
# The guest booted: whatever follows is reported, never retried as a boot failure.
: >"$labout/started"
if ! cd "$labcwd"; then
  printf 'kernel-lab: the guest cannot enter %s\n' "$labcwd" >/dev/console
else
  # shellcheck source=/dev/null # written per run by scripts/kernel-lab
  [ -f "$labout/env" ] && . "$labout/env"
  # Markers let the host show the command's output without firmware and kernel noise.
  printf '@@tcpao-lab:begin@@\n' >/dev/console
  bash "$labout/cmd" </dev/null >/dev/console 2>&1
  status=$?
  printf '@@tcpao-lab:end@@\n' >/dev/console
fi
echo "$status" >"$labout/rc.tmp" && mv "$labout/rc.tmp" "$labout/rc"
sync
# Power off through ACPI; a reboot also ends the VM because qemu runs with -no-reboot.
echo o >/proc/sysrq-trigger
sleep 5
echo b >/proc/sysrq-trigger
sleep 60
