#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript, spark.worker.resource.gpu.discoveryScript).
# Prints the GPUs of this node as Spark's ResourceInformation JSON, e.g. {"name":"gpu","addresses":["0","1"]}.
#
# Addresses are nvidia-smi indices. When CUDA_VISIBLE_DEVICES lists numeric indices, only those are reported, in
# that order; note that CUDA then numbers the visible devices 0, 1, ... so an engine must map an address to its
# position in CUDA_VISIBLE_DEVICES. A node without nvidia-smi, or one where it finds no device, reports no GPUs
# (exit 0) and Spark's own check names the shortfall; any other nvidia-smi failure exits 1 with its output on stderr.
set -euo pipefail

me="getGpusResources.sh"
print_json() { # the addresses as arguments
  local out='{"name":"gpu","addresses":[' sep='' a
  for a in "$@"; do out+="$sep\"$a\""; sep=','; done
  printf '%s]}\n' "$out"
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "$me: nvidia-smi not found on PATH: reporting no GPUs" >&2
  print_json
  exit 0
fi

status=0
listing=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1) || status=$?
if [ "$status" -eq 6 ]; then # nvidia-smi's "no devices were found"
  echo "$me: nvidia-smi found no GPU: reporting none" >&2
  print_json
  exit 0
elif [ "$status" -ne 0 ]; then
  echo "$me: 'nvidia-smi --query-gpu=index --format=csv,noheader' failed with exit code $status: $listing" >&2
  exit 1
fi

gpus=()
while IFS= read -r line; do
  line=${line//[[:space:]]/}
  [ -z "$line" ] && continue
  case "$line" in
    *[!0-9]*) echo "$me: nvidia-smi printed '$line' where a GPU index was expected" >&2; exit 1 ;;
  esac
  gpus+=("$line")
done <<< "$listing"

if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
  IFS=',' read -r -a wanted <<< "${CUDA_VISIBLE_DEVICES// /}"
  numeric=1
  for w in "${wanted[@]}"; do
    case "$w" in ''|*[!0-9]*) numeric=0 ;; esac
  done
  if [ "${#wanted[@]}" -eq 0 ]; then
    gpus=() # set but empty: CUDA sees no device
  elif [ "$numeric" -eq 1 ]; then
    visible=()
    for w in "${wanted[@]}"; do
      for g in "${gpus[@]}"; do
        if [ "$((10#$w))" -eq "$((10#$g))" ]; then visible+=("$g"); break; fi
      done
    done
    gpus=("${visible[@]+"${visible[@]}"}")
  else
    echo "$me: CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' is not a list of indices (UUIDs are not mapped): reporting every GPU nvidia-smi lists" >&2
  fi
fi

print_json "${gpus[@]+"${gpus[@]}"}"
