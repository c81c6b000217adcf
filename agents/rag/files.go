package rag

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DocumentExtensions are the files IngestPath reads from a folder.
var DocumentExtensions = []string{".md", ".markdown", ".txt"}

func isDocument(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range DocumentExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// Progress reports one file of IngestPath.
type Progress struct {
	// Done files out of Total, this one included.
	Done, Total int
	// Name is the document's name: its path relative to the folder, with forward slashes.
	Name   string
	Result IngestResult
	// Err is why this file failed; the others are still ingested.
	Err error
}

// PathSummary totals an IngestPath run.
type PathSummary struct {
	Files, Unchanged, Failed, Chunks, Embedded int
}

// DocumentFiles lists what IngestPath would ingest from path: the file itself, or every
// .md, .markdown and .txt file under the folder (recursively, skipping hidden files and
// folders), sorted, as absolute paths with their document names.
func DocumentFiles(path string) (files, names []string, err error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !info.IsDir() {
		return []string{path}, []string{filepath.Base(path)}, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || !isDocument(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		files = append(files, p)
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Sort(byName{files, names})
	return files, names, nil
}

type byName struct{ files, names []string }

func (b byName) Len() int           { return len(b.names) }
func (b byName) Less(i, j int) bool { return b.names[i] < b.names[j] }
func (b byName) Swap(i, j int) {
	b.names[i], b.names[j] = b.names[j], b.names[i]
	b.files[i], b.files[j] = b.files[j], b.files[i]
}

// IngestPath ingests a file, or every document under a folder, into a knowledge base,
// calling progress (when set) after each file. A file that fails is reported and skipped;
// the returned error joins every failure.
func (ix *Index) IngestPath(ctx context.Context, kb, path string, progress func(Progress)) (PathSummary, error) {
	var sum PathSummary
	files, names, err := DocumentFiles(path)
	if err != nil {
		return sum, fmt.Errorf("ingest %s: %w", path, err)
	}
	if len(files) == 0 {
		return sum, fmt.Errorf("ingest %s: no %s files", path, strings.Join(DocumentExtensions, ", "))
	}
	var errs []error
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		p := Progress{Done: i + 1, Total: len(files), Name: names[i]}
		if info, err := os.Stat(f); err == nil && info.Size() > int64(ix.cfg.MaxDocumentBytes) {
			p.Err = fmt.Errorf("ingest %s: %d bytes, over the limit of %d", names[i], info.Size(), ix.cfg.MaxDocumentBytes)
		} else if content, err := os.ReadFile(f); err != nil {
			p.Err = fmt.Errorf("ingest %s: %w", names[i], err)
		} else {
			p.Result, p.Err = ix.Ingest(ctx, kb, Document{Name: names[i], Content: string(content)})
		}
		sum.Files++
		if p.Err != nil {
			if ctx.Err() != nil {
				return sum, ctx.Err()
			}
			sum.Failed++
			errs = append(errs, p.Err)
		} else {
			sum.Chunks += p.Result.Chunks
			sum.Embedded += p.Result.Embedded
			if p.Result.Unchanged {
				sum.Unchanged++
			}
		}
		if progress != nil {
			progress(p)
		}
	}
	return sum, errors.Join(errs...)
}
