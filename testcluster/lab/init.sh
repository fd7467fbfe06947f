#!/bin/busybox sh
# Init of a lab guest: mount the basics, load the virtio drivers (modules in
# the cloud kernel, in dependency order), configure the NIC from hm.ip= and
# hm.name= on the kernel command line, then run the workload.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk; do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "hm-init: insmod $m failed"
done
for w in $(cat /proc/cmdline); do
  case "$w" in
    hm.ip=*) HM_IP="${w#hm.ip=}" ;;
    hm.name=*) hostname "${w#hm.name=}" ;;
  esac
done
ip link set lo up
if [ -n "$HM_IP" ]; then
  ip link set eth0 up
  ip addr add "$HM_IP" dev eth0 || echo "hm-init: cannot set $HM_IP on eth0"
fi
/bin/hm-agent
echo "hm-init: hm-agent exited with $?"
while true; do sleep 3600; done
