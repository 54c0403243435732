# clinicgate — see README.md. `make help` lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/clinicgate
DATA    ?= .run/data
export CGO_ENABLED := 0

.PHONY: help build build-all run test test-fresh test-short test-deps bench fuzz clean deb check-package image-deps image-vm image-pi image-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## build bin/clinicgate for this machine
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/clinicgate

build-all: ## build dist/clinicgate-linux-amd64 and -arm64 (Raspberry Pi)
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/clinicgate-linux-amd64 ./cmd/clinicgate
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/clinicgate-linux-arm64 ./cmd/clinicgate

run: build ## start the appliance on loopback with a demo client and user, and print how to log in
	$(BIN) serve --demo --data $(DATA) --radius-auth 127.0.0.1:1812 --radius-acct 127.0.0.1:1813 --http 127.0.0.1:9812 --ssh 127.0.0.1:2222 --ldap 127.0.0.1:10389 --ldaps 127.0.0.1:10636

test-deps: ## install what the tests need (Debian packages, Go modules)
	@sh .ci/install-test-deps

test: test-deps ## run every test against the real peers, and check the .deb and the systemd unit
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) check-package

test-fresh: ## run make test in a clean Debian 12 root (root; proves the install list; about 15 min)
	sh .ci/fresh-root

test-short: ## the fast unit tests only
	$(GO) test -short ./...

bench: test-deps ## measure: RADIUS logins per second, latency, daemon memory, a 10,000-device MDM sync (see docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./e2e/ | tee bench.out

FUZZTIME ?= 5m
fuzz: ## fuzz the RADIUS request path, CoA answers, LDAP message decoding and the directory's search, FUZZTIME each (default 5m)
	$(GO) test -run '^$$' -fuzz FuzzAccessRequest -fuzztime $(FUZZTIME) ./radius/
	$(GO) test -run '^$$' -fuzz FuzzDynAuthAnswer -fuzztime $(FUZZTIME) ./radius/
	$(GO) test -run '^$$' -fuzz FuzzReadRequest -fuzztime $(FUZZTIME) ./ldapproxy/ldapmsg/
	$(GO) test -run '^$$' -fuzz FuzzSearch -fuzztime $(FUZZTIME) ./appliance/directory/vdir/

# nfpm (Go) builds the .deb; `go run pkg@version` fetches it like a module.
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.41.3
DEB_VERSION ?= 0.1.0+git$(shell git rev-parse --short HEAD 2>/dev/null || echo 0)
DEB_ARCHES  ?= amd64 arm64

deb: ## build dist/clinicgate_*_amd64.deb and _arm64.deb (the Pi)
	@mkdir -p dist
	@for arch in $(DEB_ARCHES); do \
		GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/pkg/clinicgate ./cmd/clinicgate || exit 1; \
		ARCH=$$arch VERSION=$(DEB_VERSION) $(NFPM) package -f image/nfpm.yaml -p deb -t dist/ || exit 1; \
	done

check-package: ## build the amd64 .deb and check its contents and the systemd unit
	$(MAKE) deb DEB_ARCHES=amd64
	sh .ci/check-package dist

image-deps: ## install what building and booting the images needs (Debian packages; root)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap systemd-boot-efi \
		dosfstools exfatprogs mtools fdisk e2fsprogs qemu-utils zstd qemu-system-x86 ovmf freeradius-utils openssh-client \
		qemu-user-static binfmt-support qemu-system-arm arch-test tmux openssh-server

image-vm: ## build the x86-64 VM image (raw, raw.zst, qcow2) in dist/image (root; about 5 min)
	rm -f dist/clinicgate_*_amd64.deb
	$(MAKE) deb DEB_ARCHES=amd64
	sh image/build-vm.sh dist/clinicgate_*_amd64.deb dist/image

image-pi: ## build the Raspberry Pi SD-card image (arm64, img and img.zst) in dist/image (root; emulated, 15+ min)
	rm -f dist/clinicgate_*_arm64.deb
	$(MAKE) deb DEB_ARCHES=arm64
	sh image/build-pi.sh dist/clinicgate_*_arm64.deb dist/image

image-test: ## boot the images under qemu: layout, root growth, RADIUS, SSH host key, power loss; the VM: network, NTP, a backup on a FAT USB stick restored onto a 2nd image via the console (root; ~15 min)
	sh image/test-image.sh vm dist/image/clinicgate-vm-amd64.raw
	if [ -f dist/image/clinicgate-pi-arm64.img ]; then sh image/test-image.sh pi dist/image/clinicgate-pi-arm64.img; fi

clean: ## remove build output and the demo data directory
	rm -rf bin dist .run bench.out
