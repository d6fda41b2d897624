#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the status page test (tests/e2e/test_status_page.py).
# Debian's packages: chromium (/usr/bin/chromium) and chromium-driver (/usr/bin/chromedriver).
# Needs root (apt-get); does nothing when both are installed.
set -euo pipefail

packages=(chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "chromium and chromium-driver are installed"
  exit 0
fi
echo "installing ${missing[*]} (Debian packages, for the status page browser test)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
/usr/bin/chromium --version
