"""The browser views: the live view of a running pipeline (`--serve`) and the upload page (`polyp-rt serve`)."""
