#!/bin/bash
# Placeholder for Raspberry Pi Imager's firstrun.sh (scripts/e2e-base.sh):
# cmdline.txt does not run it here. make image must leave it untouched.
set +e
rm -f /boot/firmware/firstrun.sh
exit 0
