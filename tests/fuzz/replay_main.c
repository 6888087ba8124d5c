/*
 * replay_main.c -- runs a libFuzzer target over a corpus, without
 * libFuzzer, so "make check" keeps every saved input (and old crasher)
 * passing in any build.
 *
 * Arguments are files or directories; with none, the directory
 * $SRCDIR/tests/fuzz/corpus/CORPUS is used (CORPUS: the target's name,
 * "dlist" unless the build says otherwise).  The whole replay counts as
 * one test: it passes if every input ran without a crash or abort.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef CORPUS
#define CORPUS "dlist"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t files;

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;

	if (fp == NULL) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			data = realloc(data, cap);
			if (data == NULL)
				abort();
		}
		n = fread(data + len, 1, cap - len, fp);
		if (n == 0)
			break;
		len += n;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	files++;
	return 0;
}

static int
run_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if ((d = opendir(path)) == NULL) {
		perror(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		r |= run_path(sub);
	}
	closedir(d);
	return r;
}

int
main(int argc, char **argv)
{
	char def[4096];
	int i, r = 0;

	if (argc < 2) {
		const char *src = getenv("SRCDIR") ? getenv("SRCDIR") : "..";

		snprintf(def, sizeof(def), "%s/tests/fuzz/corpus/%s", src,
		    CORPUS);
		r = run_path(def);
	}
	for (i = 1; i < argc; i++)
		r |= run_path(argv[i]);
	/* A crash never reaches this line. */
	printf("# %zu corpus inputs replayed\n", files);
	printf("summary %s passed=%d failed=%d\n", argv[0], r || !files ? 0 : 1,
	    r || !files ? 1 : 0);
	return r ? 1 : 0;
}
