"""What an open photo is made of, without Qt: the `Box` type, the editable removal mask
with bit-packed patches, and the document (pixels + mask) with undoable edits."""
