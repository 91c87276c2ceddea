"""The local development control plane: etcd, kube-apiserver, controllers and KWOK on loopback."""
