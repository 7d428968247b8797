module github.com/vibekit/vibekit-pipe

go 1.26.8

require (
	github.com/fsnotify/fsnotify v1.10.1
	github.com/itchyny/gojq v0.12.20
	github.com/klauspost/compress v1.20.4
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/peterbourgon/ff/v3 v3.4.0
	github.com/rogpeppe/go-internal v1.16.0
	golang.org/x/sys v0.41.0
)

require (
	github.com/itchyny/timefmt-go v0.1.9 // indirect
	golang.org/x/tools v0.26.0 // indirect
)
