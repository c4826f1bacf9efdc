#!/usr/bin/env bash
# Provisions one kaji VM (run by the Vagrantfile as root): installs the binaries and the
# systemd units from the shared repository (/kaji), writes /etc/kaji/*.env from the units'
# default environment files plus this machine's values, and starts the units.
#   provision.sh control-plane NAME IP CONTROL_PLANE_IP   # API server, scheduler, controllers
#   provision.sh worker NAME IP CONTROL_PLANE_IP          # kubelet and kube-proxy
set -euo pipefail
role="$1" name="$2" ip="$3" control_plane="$4"
repo=/kaji
shared="$repo/.vagrant-kaji"
units="$repo/manifests/systemd"

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 iptables >/dev/null
install -d /etc/kaji /var/lib/kaji

# Unit NAME with the defaults of its environment file and this machine's values appended
# (later lines win).
install_unit() {
  local unit="$1"; shift
  install -m 0755 "$repo/target/release/$unit" /usr/local/bin/
  install -m 0644 "$units/$unit.service" /etc/systemd/system/
  { cat "$units/$unit.env"; printf '%s\n' "$@"; } > "/etc/kaji/$unit.env"
}

if [ "$role" = control-plane ]; then
  install_unit kube-apiserver "BIND_ADDRESS=0.0.0.0" "ADVERTISE_ADDRESS=$ip"
  install_unit kube-scheduler
  install_unit kube-controller-manager
  systemctl daemon-reload
  systemctl enable --now kube-apiserver
  for _ in $(seq 1 60); do
    [ -f /var/lib/kaji/apiserver/admin.kubeconfig ] && break
    sleep 1
  done
  # The admin kubeconfig names the advertised address; the Vagrantfile's trigger copies it to
  # the host for the workers and for you.
  systemctl enable --now kube-scheduler kube-controller-manager
else
  if [ ! -f "$shared/admin.kubeconfig" ]; then
    echo "no $shared/admin.kubeconfig: bring the control plane up first (vagrant up --no-parallel)" >&2
    exit 1
  fi
  install -m 0600 "$shared/admin.kubeconfig" /etc/kaji/node.kubeconfig
  install_unit kubelet "NODE_NAME=$name" "NODE_IP=$ip"
  install_unit kube-proxy "NODE_NAME=$name"
  systemctl daemon-reload
  systemctl enable --now kubelet kube-proxy
fi
echo "kaji $role $name ($ip) provisioned; control plane at https://$control_plane:6443"
