-- A version's README.md (markdown, at most 256 KB, read from the archive at publish) for the Hub:
-- NULL when the package has none, and for every version published before this column existed.
ALTER TABLE versions ADD COLUMN readme TEXT;
