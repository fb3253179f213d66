/**
 * Where the official data files are published, and their SHA-256 checksums. Downloads are
 * verified against these before they are used.
 */

export interface OfficialFile {
  name: string;
  sha256: string;
  /** Full URLs, tried in order. */
  urls: string[];
}

export interface OfficialSource {
  /** Folder under the cache root. */
  cacheFolder: string;
  files: OfficialFile[];
}

const MNIST_BASES = ['https://storage.googleapis.com/cvdf-datasets/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/'];
const FASHION_BASES = ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'];

function files(bases: string[], sums: Record<string, string>): OfficialFile[] {
  return Object.entries(sums).map(([name, sha256]) => ({ name, sha256, urls: bases.map((base) => base + name) }));
}

export const OFFICIAL_SOURCES = {
  mnist: {
    cacheFolder: 'mnist',
    files: files(MNIST_BASES, {
      'train-images-idx3-ubyte.gz': '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
      'train-labels-idx1-ubyte.gz': '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
      't10k-images-idx3-ubyte.gz': '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
      't10k-labels-idx1-ubyte.gz': 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
    }),
  },
  'fashion-mnist': {
    cacheFolder: 'fashion-mnist',
    files: files(FASHION_BASES, {
      'train-images-idx3-ubyte.gz': '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
      'train-labels-idx1-ubyte.gz': 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
      't10k-images-idx3-ubyte.gz': '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
      't10k-labels-idx1-ubyte.gz': '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
    }),
  },
  cifar10: {
    cacheFolder: 'cifar10',
    // The publisher gives only the MD5 (c32a1d4ab5d03f1284b67883e8d87530) of this 170,052,171-byte
    // archive; this SHA-256 of the same file is the one in TensorFlow Datasets' checksum registry
    // (tensorflow_datasets/url_checksums/cifar10.txt) and other independent references.
    files: files(['https://www.cs.toronto.edu/~kriz/'], {
      'cifar-10-binary.tar.gz': 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd',
    }),
  },
} as const satisfies Record<string, OfficialSource>;

export type DownloadableSource = keyof typeof OFFICIAL_SOURCES;
