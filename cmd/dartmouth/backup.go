package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

const backupUsage = `usage:
  dartmouth backup [--to KEY]       write a consistent snapshot of every table to the blob
                                    store (the data folder, or S3/R2 with --s3-bucket) as
                                    gzipped JSON lines; the key is printed on stdout. Default
                                    key backups/YYYY/MM/DD/dartmouth-YYYYMMDDTHHMMSSZ.jsonl.gz
  dartmouth restore KEY [--force]   restore a backup into the database (migrations first, then
                                    every row in one transaction); a database holding rows is
                                    refused unless --force, which replaces them
Backups are portable: one taken from SQLite restores into PostgreSQL and the other way round.
flags: every gateway flag (--data-dir, --database-url, --s3-bucket ...)`

// defaultBackupKey names a backup by the time it was taken, in UTC.
func defaultBackupKey(now time.Time) string {
	now = now.UTC()
	return "backups/" + now.Format("2006/01/02") + "/dartmouth-" + now.Format("20060102T150405Z") + ".jsonl.gz"
}

// backupCommand runs `dartmouth backup`: the store the gateway uses (SQLite in the data folder,
// or PostgreSQL with --database-url) into the blob store it uses.
func backupCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "help" {
		fmt.Fprintln(stdout, backupUsage)
		return nil
	}
	var to string
	extra := func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "blob key of the backup (default backups/YYYY/MM/DD/dartmouth-<time>.jsonl.gz)")
	}
	cfg, rest, err := parseConfigArgs("dartmouth backup", interspersed(args, extra), getenv, stderr, extra)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		fmt.Fprintln(stderr, backupUsage)
		return fmt.Errorf("backup: unexpected argument %q (the key goes after --to)", rest[0])
	}
	if to == "" {
		to = defaultBackupKey(time.Now())
	}
	blobs, err := blobStore(cfg)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()

	// The snapshot streams into the blob store; a failure on either side stops the other.
	pr, pw := io.Pipe()
	type result struct {
		stats session.BackupStats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		stats, err := store.Backup(ctx, pw)
		pw.CloseWithError(err)
		done <- result{stats, err}
	}()
	putErr := blobs.Put(ctx, to, pr, "application/gzip")
	pr.CloseWithError(cmp.Or(putErr, io.ErrClosedPipe)) // unblocks a snapshot the store stopped reading
	res := <-done
	if res.err != nil {
		return fmt.Errorf("backup of %s: %w", where, res.err)
	}
	if putErr != nil {
		return fmt.Errorf("backup: write %s: %w", to, putErr)
	}
	fmt.Fprintln(stdout, to)
	fmt.Fprintf(stderr, "backed up %d rows of %d tables from %s (%s, schema %d) to %s\n", res.stats.Rows, res.stats.Tables, where, res.stats.Dialect, res.stats.Schema, to)
	return nil
}

// restoreCommand runs `dartmouth restore KEY`.
func restoreCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "help" {
		fmt.Fprintln(stdout, backupUsage)
		return nil
	}
	var force bool
	extra := func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "restore into a database that holds rows, deleting them first")
	}
	cfg, rest, err := parseConfigArgs("dartmouth restore", interspersed(args, extra), getenv, stderr, extra)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, backupUsage)
		return errors.New("restore: name one backup key, as `dartmouth backup` printed it")
	}
	key := rest[0]
	blobs, err := blobStore(cfg)
	if err != nil {
		return err
	}
	rc, err := blobs.Get(ctx, key)
	if errors.Is(err, session.ErrBlobNotFound) {
		return fmt.Errorf("restore: no backup at %q in the blob store", key)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer rc.Close()
	store, where, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	stats, err := store.Restore(ctx, rc, session.RestoreOptions{Force: force})
	if errors.Is(err, session.ErrDatabaseNotEmpty) {
		return fmt.Errorf("restore into %s refused: %w", where, err)
	}
	if err != nil {
		return fmt.Errorf("restore %s into %s: %w", key, where, err)
	}
	taken := "at an unknown time"
	if !stats.CreatedAt.IsZero() {
		taken = stats.CreatedAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "restored %d rows of %d tables into %s from %s (a %s backup taken %s, schema %d)\n",
		stats.Rows, stats.Tables, where, key, stats.Dialect, taken, stats.Schema)
	return nil
}
