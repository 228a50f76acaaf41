import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PersistentMap, type MapCodec } from './persistent-map.js';
import { inTempDir } from '../../test/kit/temp-dir.js';

const codec: MapCodec<{ n: number }> = {
  encode: (value) => ({ n: value.n }),
  decode: (record) => (typeof record['n'] === 'number' ? { n: record['n'] } : undefined),
};
const open = (file: string, context = 'relay A', version = 1): Promise<PersistentMap<{ n: number }>> => PersistentMap.open(file, { kind: 'test-map', version, context, codec });

const inTemp = (body: (dir: string) => Promise<void>): Promise<void> => inTempDir('persistent-map-', body);

test('values survive a restart; deletes and memory-only values do not come back; the context is not spelled out', () => inTemp(async (dir) => {
  const file = join(dir, 'map');
  const map = await open(file);
  map.set('a', { n: 1 });
  map.set('b', { n: 2 });
  map.set('c', { n: 3 }, false);
  map.set('a', { n: 4 });
  map.delete('b');
  map.close();
  const again = await open(file);
  assert.deepEqual([...again.keys()].sort(), ['a']);
  assert.deepEqual(again.get('a'), { n: 4 });
  assert.equal((await readFile(file, 'utf8')).includes('relay A'), false);
  again.set('a', { n: 5 });
  again.set('a', { n: 6 }, false);
  again.close();
  assert.equal((await open(file)).get('a'), undefined, 'a value replaced by a memory-only one is not trusted after a restart');
}));

test('any doubt empties the map: another context or version, a foreign file, a damaged line, a record the codec refuses', () => inTemp(async (dir) => {
  const file = join(dir, 'map');
  const fill = async (): Promise<void> => {
    const map = await open(file);
    map.set('a', { n: 1 });
    map.set('b', { n: 2 });
    map.close();
  };
  await fill();
  assert.equal((await open(file, 'relay B')).size, 0, 'another relay');
  await fill();
  assert.equal((await open(file, 'relay A', 2)).size, 0, 'another version (moved aside)');
  await fill();
  await appendFile(file, '{"k":"b","n":');
  assert.equal((await open(file)).size, 0, 'a torn line: its key cannot be trusted, nor any other');
  await fill();
  await appendFile(file, '{"k":"a","n":"x"}\n');
  const refused = await open(file);
  assert.equal(refused.get('a'), undefined, 'a record the codec refuses drops its key');
  assert.deepEqual(refused.get('b'), { n: 2 });
  await writeFile(file, 'not a map\n');
  assert.equal((await open(file)).size, 0, 'a foreign file');
  assert.equal(await readFile(`${file}.foreign`, 'utf8'), 'not a map\n');
}));
